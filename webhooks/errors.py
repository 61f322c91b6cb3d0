"""What every source adapter raises on input it cannot understand."""

from __future__ import annotations


class Malformed(ValueError):
    """The payload (or one line, one row of it) cannot be understood; the message says
    which part is wrong and how."""
