"""Numbers, dates and durations written the French way (Babel's fr_FR data): « 85,3 % »,
« 1 234 », « +2,1 pts », « lundi 23 novembre 2026 »; « — » for a figure that has no value."""

from __future__ import annotations

from datetime import date

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent

from service.digest.weeks import IsoWeek

LOCALE = "fr_FR"
_P = str(Locale.parse(LOCALE).percent_formats[None].pattern)  # « #,##0 % »
PERCENT = _P[: _P.rindex("0") + 1] + ".0" + _P[_P.rindex("0") + 1 :]  # one decimal
NONE = "—"


def pct(x: float | None) -> str:
    """« 85,3 % » (one decimal: the targets are whole percents, a tenth shows a near miss)."""
    # The locale's percent pattern with one decimal (its no-break space before « % »).
    return NONE if x is None else format_percent(x, PERCENT, locale=LOCALE)


def count(n: int | None) -> str:
    return NONE if n is None else format_decimal(n, "#,##0", locale=LOCALE)


def many(n: int | None, one: str, other: str) -> str:
    """« 1 appel perdu », « 0 appel perdu », « 12 appels perdus » (French: 0 and 1 are
    singular)."""
    return f"{count(n)} {one if n is not None and n < 2 else other}"


def points(delta: float | None) -> str:
    """A change of a ratio in percentage points: « +2,1 pts », « −0,4 pt », « = »."""
    if delta is None:
        return NONE
    value = round(delta * 100, 1)
    if value == 0:
        return "="
    text = format_decimal(abs(value), "#,##0.0", locale=LOCALE)
    sign = "+" if value > 0 else "−"  # a true minus sign, as French typography wants
    unit = "pt" if abs(value) < 2 else "pts"
    return f"{sign}{text}\u00a0{unit}"


def seconds(s: float | None) -> str:
    """« 18 s », « 1 min 05 s »."""
    if s is None:
        return NONE
    whole = round(s)
    if whole < 60:
        return f"{whole}\u00a0s"
    return f"{whole // 60}\u00a0min\u00a0{whole % 60:02d}\u00a0s"


def _day(d: date) -> str:
    """« 1er », « 2 »: French writes the first of the month as an ordinal."""
    return "1er" if d.day == 1 else str(d.day)


def long_day(d: date) -> str:
    """« lundi 23 novembre 2026 », « mardi 1er décembre 2026 »."""
    return f"{format_date(d, 'EEEE', locale=LOCALE)} {_day(d)} " + format_date(
        d, "MMMM y", locale=LOCALE
    )


def short_day(d: date) -> str:
    """« lun. 23 nov. », « mar. 1er déc. »."""
    return f"{format_date(d, 'EEE', locale=LOCALE)} {_day(d)} " + format_date(
        d, "MMM", locale=LOCALE
    )


def week_span(week: IsoWeek) -> str:
    """« du 23 au 29 novembre 2026 », « du 30 novembre au 6 décembre 2026 »,
    « du 28 décembre 2026 au 3 janvier 2027 »."""
    a, b = week.monday, week.sunday

    def month(d: date, pattern: str = "MMMM y") -> str:
        return f"{_day(d)} {format_date(d, pattern, locale=LOCALE)}"

    if a.year != b.year:
        return f"du {month(a)} au {month(b)}"
    if a.month != b.month:
        return f"du {month(a, 'MMMM')} au {month(b)}"
    return f"du {_day(a)} au {month(b)}"


def week_label(week: IsoWeek) -> str:
    """« semaine 48 »."""
    return f"semaine {week.week}"


def half_hour(slot: int) -> str:
    """« 10 h 00 – 10 h 30 » for slot 20."""
    start, end = slot * 30, slot * 30 + 30
    return f"{start // 60}\u00a0h\u00a0{start % 60:02d} – {end // 60}\u00a0h\u00a0{end % 60:02d}"


def score(value: float | None, scale: float) -> str:
    """« 15,2 / 20 »."""
    if value is None:
        return NONE
    return f"{format_decimal(value, '#,##0.0', locale=LOCALE)}\u00a0/\u00a0" + format_decimal(
        scale, "#,##0.##", locale=LOCALE
    )
