"""Random credentials and their stored form: only a SHA-256 of a token is ever stored."""

from __future__ import annotations

import hashlib
import secrets

PREFIXES = {"api": "dcr_", "wall": "dcrmur_", "session": "", "setup": ""}


def new_token(kind: str) -> str:
    """A fresh random credential (256 bits), prefixed so a leaked one is recognisable."""
    return PREFIXES[kind] + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    # A fast hash is right here: the token is 256 random bits, not a guessable password.
    return hashlib.sha256(token.encode()).hexdigest()
