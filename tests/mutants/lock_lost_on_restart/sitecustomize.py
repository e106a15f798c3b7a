"""Mutant: the gateway keeps its providers across a restart but not the lock or the counters: after a
restart the highest-priority provider holds the lock again, with every counter back at zero."""

from sut.gateway.failover import Failover
from sut.gateway.providers import ProviderCounters

_original = Failover.load


def _forgetful_load(self):
    _original(self)
    for lock in self.locks.values():
        lock.active = lock.providers[0].name
        lock.switches = 0
        lock.counters = {spec.name: ProviderCounters() for spec in lock.providers}
        self.audit.entries = type(self.audit.entries)(
            e for e in self.audit.entries if e["action"] != "lock_restored"
        )


Failover.load = _forgetful_load
