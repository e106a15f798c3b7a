"""Mutant: the admin API takes any token, or none at all (the token check was lost)."""

from mutant_patch import mutate

mutate(
    "sut.gateway.admin",
    "def require_token(request: Request) -> None:\n",
    "def require_token(request: Request) -> None:\n    return None\n",
)
