"""Mutant: the gateway puts no deadline on its calls to workers (a slow or silent worker hangs the client)."""

from sut.gateway.routing import Router

_original_init = Router.__init__


def _init_without_deadline(self, *args, **kwargs):
    _original_init(self, *args, **kwargs)
    self.timeout = None  # asyncio.timeout(None): wait for ever


Router.__init__ = _init_without_deadline
