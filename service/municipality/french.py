"""Dates and times written the French way, without depending on the machine's locales."""

from __future__ import annotations

from datetime import date, datetime

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def long_date(d: date) -> str:
    """« mercredi 2 décembre 2026 » (« 1er » for the first of the month)."""
    day = "1er" if d.day == 1 else str(d.day)
    return f"{WEEKDAYS[d.weekday()]} {day} {MONTHS[d.month - 1]} {d.year}"


def clock(t: datetime) -> str:
    """« 10 h 15 », « 9 h 05 »: the time of a local datetime."""
    return f"{t.hour} h {t.minute:02d}"
