"""Mutant: time rules evaluated an hour off (the zone's offset applied twice, a daylight-saving slip); the
clock the gateway shows is right."""

from datetime import timedelta

from sut.gateway import policies

_original_choose = policies._Compiled.choose


def _hour_late(self, production, now):
    return _original_choose(self, production, now + timedelta(hours=1))


policies._Compiled.choose = _hour_late
