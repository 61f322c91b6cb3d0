"""Password hashing with Argon2id (``argon2-cffi``, RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12

_hasher = PasswordHasher()  # argon2id, 64 MiB, t=3, p=4: the library's RFC 9106 defaults
# Verified when the e-mail is unknown, so that a wrong address costs as much time as a
# wrong password and answers cannot be told apart by their delay.
_DUMMY = _hasher.hash("not a password of anyone")


def check_strength(password: str) -> str | None:
    """What is wrong with a new password (in French, shown on the form), or None."""
    if len(password) < MIN_LENGTH:
        return f"Le mot de passe doit compter au moins {MIN_LENGTH} caractères."
    if len(password) > 1024:
        return "Le mot de passe est trop long (1 024 caractères au plus)."
    if len(set(password)) < 5:
        return "Le mot de passe est trop répétitif."
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when ``password`` matches ``stored``; constant effort when nothing is stored."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
