"""Signed cookie values and CSRF tokens, keyed by ``DECROCHE_SECRET_KEY``."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

SESSION_COOKIE = "decroche_session"
LOGIN_CSRF_COOKIE = "decroche_csrf"  # the login form's token, before any session exists


def _mac(secret: str, purpose: str, value: str) -> str:
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, value: str) -> str:
    return f"{value}.{_mac(secret, 'cookie', value)[:43]}"


def unsign(secret: str, signed: str) -> str | None:
    """The value of a signed cookie, or None when the signature does not match."""
    value, _, sig = signed.rpartition(".")
    expected = _mac(secret, "cookie", value)[:43]
    if not value or not hmac.compare_digest(sig.encode(errors="replace"), expected.encode()):
        return None
    return value


def csrf_token(secret: str, bound_to: str) -> str:
    """The CSRF token of a session (or of the login form's cookie): derived, not stored."""
    return _mac(secret, "csrf", bound_to)


def csrf_ok(secret: str, bound_to: str, given: str | None) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters, and a form may hold any.
    expected = csrf_token(secret, bound_to).encode()
    return given is not None and hmac.compare_digest(given.encode(errors="replace"), expected)


def set_cookie(
    response: web.StreamResponse, name: str, value: str, *, max_age: int, secure: bool
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
