"""Remove a number (or a recording's address) from stored JSON and text: pure functions.

Sources write numbers in many ways (``+33612345678``, ``0612345678``, ``06 12 34 56 78``,
inside a log line), so a number is found by a pattern built from its digits that allows
the usual separators and the national or international prefix, never by plain equality.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from service.privacy.pseudonyms import canonical

Json = Any
# Separators as written by people and PBXs, and "+" for a space in a form-encoded body.
_SEP = r"[ .\-+]?"
_PLUS = r"(?:\+|%2[Bb])"  # "%2B" is "+" in a form-encoded (quarantined) body

# Runs that look like a phone number, for masking text whose numbers are not known in
# advance (old quarantined bodies): 8 to 15 digits, optionally grouped in pairs.
_ANY_NUMBER = re.compile(
    r"(?<![\w+])(?:\+|%2[Bb]|00)?\d{8,15}(?!\w)"
    r"|(?<![\w+])(?:(?:\+|%2[Bb])33 ?|0)[1-9](?:[ .\-+]?\d\d){4}(?!\w)"
)


@lru_cache(maxsize=4096)
def number_pattern(number: str) -> re.Pattern[str] | None:
    """A pattern matching ``number`` however it is written; None for a withheld number."""
    norm = canonical(number)
    if norm is None:
        return None
    if norm.startswith("+33") and len(norm) == 12:
        national = norm[3:]
        prefixes = rf"(?:{_PLUS}33|0033|33|0)" + r"[ .\-+]?(?:\(0\))?[ .\-+]?"
        body = national
    elif norm.startswith("+"):
        prefixes = rf"(?:{_PLUS}|00)"
        body = norm[1:]
    else:
        prefixes = ""
        body = norm
    digits = _SEP.join(re.escape(d) for d in body)
    return re.compile(rf"(?<![\w+]){prefixes}{digits}(?!\w)")


def scrub_json(value: Json, replace: Callable[[str], str]) -> Json:
    """``value`` with ``replace`` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {replace(k): scrub_json(v, replace) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v, replace) for v in value]
    return value


def number_replacer(numbers: dict[str, str]) -> Callable[[str], str]:
    """Replace each number of ``numbers`` (number → what stands in its place) in a text."""
    patterns = [(p, r) for n, r in numbers.items() if (p := number_pattern(n)) is not None]

    def replace(text: str) -> str:
        if not any(c.isdigit() for c in text):
            return text
        for pattern, stand_in in patterns:
            # A function, not a string: the stand-in is literal (no backreferences).
            text = pattern.sub(_literal(stand_in), text)
        return text

    return replace


def _literal(stand_in: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: stand_in


def literal_replacer(literals: dict[str, str]) -> Callable[[str], str]:
    """Replace each exact string of ``literals`` (a recording's address, a token)."""

    def replace(text: str) -> str:
        for literal, stand_in in literals.items():
            if literal and literal in text:
                text = text.replace(literal, stand_in)
        return text

    return replace


def chain(*replacers: Callable[[str], str]) -> Callable[[str], str]:
    """One replacer applying each of ``replacers`` in turn."""

    def replace(text: str) -> str:
        for r in replacers:
            text = r(text)
        return text

    return replace


def mask_numbers(text: str) -> str:
    """Every run that looks like a phone number reduced to « … » and its last two digits."""
    return _ANY_NUMBER.sub(lambda m: "…" + re.sub(r"\D", "", m[0])[-2:], text)
