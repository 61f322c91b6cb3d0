"""``X-Decroche-Signature``: how the CDR and Asterisk webhooks are signed.

``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with
DECROCHE_WEBHOOK_SECRET>``. A signature more than five minutes away from this server's clock
is refused, so a captured request cannot be replayed later; within the window a replay is a
duplicate, which changes nothing. Several ``v1`` values may be given (while a secret is being
changed, sign with both).
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Decroche-Signature"
TOLERANCE_S = 300


def sign(secret: str, body: bytes, t: int) -> str:
    """The header value for ``body`` sent at Unix time ``t``."""
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def problem(secret: str, header: str | None, body: bytes, now: float) -> str | None:
    """Why the signature is refused, or None when it is good."""
    if not header:
        return f"missing {HEADER} header"
    t: int | None = None
    given: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit() and len(value) <= 12:
            t = int(value)
        elif key == "v1":
            given.append(value.strip().lower())
    if t is None or not given:
        return f"{HEADER} must read t=<unix seconds>,v1=<hex HMAC-SHA256>"
    if abs(now - t) > TOLERANCE_S:
        return (
            f"signature time is {int(now - t)} s away from this server's clock "
            f"(allowed: {TOLERANCE_S} s); sign each request when it is sent"
        )
    expected = sign(secret, body, t).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, v) for v in given):
        return "signature does not match (check DECROCHE_WEBHOOK_SECRET)"
    return None
