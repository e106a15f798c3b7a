"""Mutant: the admin token check accepts any prefix of the token (a "starts with" comparison)."""

from mutant_patch import mutate

mutate(
    "sut.gateway.auth",
    "return same(digest(token), gw.admin_digest)",
    "return bool(token.strip()) and gw.config.admin_token.startswith(token.strip())",
)
