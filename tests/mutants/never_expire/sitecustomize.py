"""Mutant: the gateway never expires a worker that stopped heartbeating (orphans stay registered)."""

from sut.gateway.registry import WorkerRegistry


def _never_expire(self, now=None):
    return []


WorkerRegistry.expire = _never_expire
