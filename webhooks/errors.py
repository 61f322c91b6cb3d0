"""What every source adapter raises on input it cannot understand."""

from __future__ import annotations


class Malformed(ValueError):
    """The payload (or one line, one row of it) cannot be understood; the message says
    which part is wrong and how."""


def refuse_nul(value: object, where: str = "the payload") -> None:
    """Raise :class:`Malformed` when ``value`` (a string, or lists and objects of them, keys
    included) holds a NUL character: PostgreSQL's text and jsonb cannot store U+0000, so such
    a payload is refused whole (the quarantine keeps it, the NUL written as U+FFFD)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise Malformed(f"{where} holds a NUL character (U+0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key, where)
            refuse_nul(item, where)
    elif isinstance(value, list):
        for item in value:
            refuse_nul(item, where)
