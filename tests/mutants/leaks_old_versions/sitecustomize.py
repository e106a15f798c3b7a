"""Mutant: a worker never frees the sessions of the versions it releases (a swap's old version, an
unload): its status lists only what serves, while the memory of every old version stays taken."""

from sut.worker.model_store import ModelStore

_original_release = ModelStore._wait_and_release
_LEAKED = []  # a cache nobody reads: every released session stays reachable


def _release_but_keep(self, versions, timeout):
    _LEAKED.extend(lv.session for lv in versions if lv.session is not None)
    _original_release(self, versions, timeout)


ModelStore._wait_and_release = _release_but_keep
