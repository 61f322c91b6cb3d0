"""What a request says in its path and query string, parsed strictly; faults become
``ApiError``s that say what is wrong and name the parameter.

The rules every handler shares:

- **ids** (:func:`path_id`, :func:`whole_number`): ASCII digits only (``str.isdigit()``
  also takes « ² » or « ١٢ », which ``int()`` or PostgreSQL then refuse) and at most
  PostgreSQL's bigint, 9223372036854775807; a path id that is not one is a 404.
- **days** (:func:`parse_day`, :func:`local_day`): ``YYYY-MM-DD`` in ASCII digits, of the
  years ``FIRST_YEAR`` to ``LAST_YEAR`` (1970 to 2100: what the calendar, the holidays
  library and the time zone rules answer for, far from where dates overflow);
- **weeks** (:func:`parse_week`): ``YYYY-Www`` of the same years;
- **whole numbers** (:func:`whole`): ASCII digits within the bounds the route states;
- **NUL**: PostgreSQL cannot store it in text, so a path or query string holding one is
  refused before any handler runs (:func:`refuse_nul`, from ``security_middleware``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from service.digest.weeks import FIRST_YEAR, LAST_YEAR, IsoWeek
from service.municipality.calendar import day_start
from service.municipality.model import Municipality, ServiceConfig
from service.web.errors import ApiError

BIGINT_MAX = 2**63 - 1  # PostgreSQL's bigint: every id column
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII; 19 digits hold every bigint
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FIRST_DAY = date(FIRST_YEAR, 1, 1)
LAST_DAY = date(LAST_YEAR, 12, 31)


def whole_number(text: str) -> int | None:
    """``text`` as a whole number from 0 to ``BIGINT_MAX``, or None if it is not one."""
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= BIGINT_MAX else None


def path_id(request: web.Request, name: str = "id") -> int:
    """The numeric id ``name`` of the path; anything else is a 404 that says why."""
    value = whole_number(request.match_info[name])
    if value is None:
        raise ApiError(
            f"{name} must be a whole number from 0 to {BIGINT_MAX} (ASCII digits)",
            field=name,
            status=404,
        )
    return value


def parse_day(text: str, name: str) -> date:
    """``YYYY-MM-DD`` of the supported years, or a 400 naming ``name``."""
    try:
        if not _DAY.fullmatch(text):
            raise ValueError
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(
            f"{name} must be a date like 2026-11-16, got {text[:30]!r}", field=name
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ApiError(
            f"{name} must be a day from {FIRST_DAY} to {LAST_DAY}, got {text!r}", field=name
        )
    return day


def local_day(request: web.Request, name: str) -> date | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    return parse_day(value, name)


def parse_week(text: str, name: str = "week") -> IsoWeek:
    """``YYYY-Www`` of the supported years, or a 400 naming ``name``."""
    try:
        return IsoWeek.parse(text)
    except ValueError as exc:
        raise ApiError(str(exc), field=name) from None


def period_bounds(
    first: date | None, last: date | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """Instants bounding the local days ``first``..``last`` (both included)."""
    if first is not None and last is not None and last < first:
        raise ApiError("to must not be before from", field="to")
    start = day_start(first, tz) if first else None
    end = day_start(last + timedelta(days=1), tz) if last else None
    return start, end


def whole(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    number = whole_number(value)
    if number is None or not lo <= number <= hi:
        raise ApiError(f"{name} must be a whole number from {lo} to {hi}", field=name)
    return number


def service_param(request: web.Request, m: Municipality) -> ServiceConfig | None:
    slug = request.query.get("service")
    if slug is None or slug == "":
        return None
    svc = m.service(slug)
    if svc is None:
        known = ", ".join(s.slug for s in m.services)
        raise ApiError(f"unknown service {slug[:40]!r} (known: {known})", field="service")
    return svc


def printable_name(name: str) -> str:
    """A parameter's name as an error may show it (``\\x00`` for a NUL, cut at 60)."""
    return name[:60].encode("unicode_escape").decode("ascii")


def refuse_nul(request: web.Request) -> None:
    """A 400 for a NUL character (``%00``) in the path or any query parameter's name or
    value: no text column can hold one, and no route has a use for it."""
    if "\x00" in request.path:
        raise ApiError("the path contains a NUL character (%00)", status=400)
    for key, value in request.query.items():
        if "\x00" in key or "\x00" in value:
            field = printable_name(key)
            raise ApiError(f"{field} contains a NUL character (%00)", field=field)
