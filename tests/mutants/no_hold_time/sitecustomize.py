"""Mutant: the gateway fails back to a higher-priority provider as soon as one probe finds it healthy
(no hold time), so a flapping primary takes the lock back and loses it again and again."""

from sut.gateway.failover import Failover


def _at_once(health, policy):
    return health.ok


Failover._ready_for_failback = staticmethod(_at_once)
