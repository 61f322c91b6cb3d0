"""Pseudonymisation of callers' numbers (personal data under the GDPR).

A keyed hash (HMAC-SHA256 with ``DECROCHE_SECRET_KEY``) recognises a caller again without
keeping the number; the last two digits are kept for display. The full number is stored
apart and erased after ``privacy.keep_numbers_days``.
"""

from __future__ import annotations

import hashlib
import hmac
import re

_NOT_DIGIT = re.compile(r"[^0-9+]")


class Pseudonymiser:
    """Turns a caller's number into (keyed hash, last two digits)."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(("decroche-caller:" + secret_key).encode()).digest()

    def __call__(self, number: str | None) -> tuple[str | None, str | None]:
        if not number:
            return None, None
        normalised = _NOT_DIGIT.sub("", number)
        if not any(c.isdigit() for c in normalised):
            # "anonymous", "restricted": a withheld number recognises nobody.
            return None, None
        digest = hmac.new(self._key, normalised.encode(), hashlib.sha256).hexdigest()[:32]
        return digest, normalised[-2:]
