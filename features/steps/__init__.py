"""behave's steps directory. The steps themselves live in the ``steps`` package at the repository root."""
