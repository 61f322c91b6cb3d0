"""Pseudonymisation of callers' numbers (``shared/spec/config.md``, « Privacy »).

A keyed hash (HMAC-SHA256 with ``DECROCHE_SECRET_KEY``) recognises a caller again without
keeping the number; the last two digits are kept for display. The full number is kept only
for ``privacy.keep_numbers_days``: after that, the stored events carry a *pseudonym token*
(``pseudonym:<hash>:<last two digits>``) where the number was, so folding them again gives
the same hash and digits and no number. A caller erased on request becomes ``erased``,
which recognises nobody.
"""

from __future__ import annotations

import hashlib
import hmac
import re

ERASED = "erased"
PSEUDONYM_PREFIX = "pseudonym:"

_NOT_DIGIT = re.compile(r"[^0-9+]")
_TOKEN = re.compile(r"pseudonym:([0-9a-f]{32}):([0-9]{0,2})")


def canonical(number: str) -> str | None:
    """One spelling per number, so a caller is recognised whatever the source wrote.

    Separators go; ``00`` becomes ``+``; a French national number (ten digits starting with
    a single 0) becomes E.164 (``+33`` and the nine digits after the 0). Anything with no
    digit (« anonymous », « restricted ») is None: a withheld number recognises nobody.
    """
    stripped = _NOT_DIGIT.sub("", number)
    plus = stripped.startswith("+")
    digits = stripped.replace("+", "")
    if not digits:
        return None
    if plus:
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10 and digits[0] == "0":
        return "+33" + digits[1:]
    return digits


class Pseudonymiser:
    """Turns a caller's number (or its pseudonym token) into (keyed hash, last two digits)."""

    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(("decroche-caller:" + secret_key).encode()).digest()

    def __call__(self, number: str | None) -> tuple[str | None, str | None]:
        if not number or number == ERASED:
            return None, None
        token = _TOKEN.fullmatch(number)
        if token is not None:
            return token[1], token[2] or None
        norm = canonical(number)
        if norm is None:
            return None, None
        digest = hmac.new(self._key, norm.encode(), hashlib.sha256).hexdigest()[:32]
        return digest, norm[-2:]

    def token(self, number: str) -> str:
        """What replaces ``number`` in stored events once the full number has expired."""
        digest, last2 = self(number)
        if digest is None:
            return ERASED
        return f"{PSEUDONYM_PREFIX}{digest}:{last2 or ''}"


def is_number(value: str | None) -> bool:
    """True when ``value`` is a real number (not absent, withheld, a token or erased)."""
    if not value or value == ERASED or value.startswith(PSEUDONYM_PREFIX):
        return False
    return canonical(value) is not None
