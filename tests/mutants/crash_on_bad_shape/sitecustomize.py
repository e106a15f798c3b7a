"""Mutant: a request whose shape does not match its data crashes the request handler (a 500) instead of
being refused with a 400 that says so."""

from mutant_patch import mutate

mutate(
    "sut.protocol",
    'raise BadRequest(f"{where}: shape {list(shape)} needs',
    'raise ValueError(f"{where}: shape {list(shape)} needs',
)
