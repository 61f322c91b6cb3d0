"""When a mystery call may start (pure): the candidate starts of each target, day by day.

Times are whole minutes since the Unix epoch (UTC), on a five-minute wall-clock grid, so
that checks are integer comparisons and DST days need no special case: an opening interval
is the span of instants between its local start and its local end, whatever that day's
length. A call may start at ``s`` when ``s`` lies in an opening interval of the target's
service on an open day (no holiday, no closure) and ``s + call_minutes`` is still inside it;
and when at least one evaluator may call then (``s`` inside their availability with
``call_minutes`` left, and not a day they are away).

Each day splits into half-days at 13:00 local time (morning before, afternoon from). The
**fragile edges** are the first quarter-hour in which a call may start after an opening
and the last quarter-hour in which it may start before a closing: the day's opening, the
day's closing, and the lunch edges (a closing or opening in the middle of the day).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.spec import CampaignSpec, Evaluator, Target
from service.municipality.calendar import Calendar

STEP = 5  # minutes between two candidate starts
EDGE = 15  # the width of a fragile edge, in minutes
NOON = time(13, 0)  # morning / afternoon
MORNING, AFTERNOON = 0, 1
HALVES = ("morning", "afternoon")
OPENING, LUNCH, CLOSING, CORE = "opening", "lunch", "closing", "core"
EDGE_KINDS = (OPENING, CLOSING, LUNCH)

Range = tuple[int, int]  # inclusive bounds of starts on the STEP grid


def epoch_minutes(instant: datetime) -> int:
    return int(instant.timestamp()) // 60


def from_minutes(minutes: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(minutes * 60, tz)


def ceil_step(m: int) -> int:
    return -(-m // STEP) * STEP


def floor_step(m: int) -> int:
    return m // STEP * STEP


def _local(day: date, t: time, tz: ZoneInfo) -> int:
    """The instant of a local wall-clock time; 24:00 (``time.max``) is the next midnight."""
    if t == time.max:
        return epoch_minutes(datetime.combine(day + timedelta(days=1), time(), tz))
    return epoch_minutes(datetime.combine(day, t, tz))


def intersect(ranges: Sequence[Range], allowed: Sequence[Range]) -> list[Range]:
    """Both lists sorted; the starts in both."""
    out: list[Range] = []
    for lo, hi in ranges:
        for a, b in allowed:
            x, y = max(lo, a), min(hi, b)
            if x <= y:
                out.append((x, y))
    return out


def subtract(ranges: Sequence[Range], removed: Sequence[Range]) -> list[Range]:
    out = list(ranges)
    for a, b in removed:
        nxt: list[Range] = []
        for lo, hi in out:
            if b < lo or a > hi:
                nxt.append((lo, hi))
                continue
            if lo < a:
                nxt.append((lo, a - STEP))
            if b < hi:
                nxt.append((b + STEP, hi))
        out = nxt
    return out


def starts(ranges: Sequence[Range]) -> Iterator[int]:
    for lo, hi in ranges:
        yield from range(lo, hi + 1, STEP)


def count(ranges: Sequence[Range]) -> int:
    return sum((hi - lo) // STEP + 1 for lo, hi in ranges)


@dataclass
class Leaf:
    """One half-day of one date of one target: where its calls may start."""

    day: date
    half: int
    week: int  # index of the calendar week in the campaign (Monday to Sunday)
    ranges: list[Range]  # candidate starts
    edges: dict[str, list[Range]] = field(default_factory=dict)  # edge kind → its starts

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for k, r in self.edges.items() if r)

    def ranges_for(self, moment: str) -> list[Range]:
        """The starts of an edge kind, or of the core (outside every edge) for ``core``."""
        if moment != CORE:
            return self.edges.get(moment, [])
        return subtract(self.ranges, [r for rs in self.edges.values() for r in rs])


class Availability:
    """When each evaluator may start a call, date by date (``None``: any time)."""

    def __init__(self, evaluators: Sequence[Evaluator], call_minutes: int, tz: ZoneInfo) -> None:
        self.evaluators = evaluators
        self.call = call_minutes
        self.tz = tz
        self._cache: dict[tuple[int, date], list[Range] | None] = {}

    def of(self, index: int, day: date) -> list[Range] | None:
        key = (index, day)
        if key not in self._cache:
            self._cache[key] = self._compute(self.evaluators[index], day)
        return self._cache[key]

    def _compute(self, e: Evaluator, day: date) -> list[Range] | None:
        if day in e.unavailable:
            return []
        if e.availability is None:
            return None
        out = []
        for a, b in e.availability.get(day.weekday(), ()):
            lo, hi = (
                ceil_step(_local(day, a, self.tz)),
                floor_step(_local(day, b, self.tz) - self.call),
            )
            if lo <= hi:
                out.append((lo, hi))
        return out

    def union(self, day: date) -> list[Range] | None:
        """When anyone may call that day; ``None`` when someone may call at any time."""
        out: list[Range] = []
        for i in range(len(self.evaluators)):
            got = self.of(i, day)
            if got is None:
                return None
            out.extend(got)
        return sorted(out)

    def allows(self, index: int, day: date, start: int) -> bool:
        got = self.of(index, day)
        return got is None or any(lo <= start <= hi for lo, hi in got)


def days(first: date, last: date) -> Iterator[date]:
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def opening_ranges(
    calendar: Calendar, spec: CampaignSpec, target: Target, day: date
) -> list[tuple[Range, list[tuple[str, Range]]]]:
    """The starts of each opening interval of a day, with its two fragile edges."""
    svc = calendar.m.service(target.service)
    assert svc is not None
    intervals = calendar.intervals(svc, day)
    tz = calendar.tz
    out = []
    for i, (a, b) in enumerate(intervals):
        open_at, close_at = _local(day, a, tz), _local(day, b, tz)
        lo, hi = ceil_step(open_at), floor_step(close_at - spec.call_minutes)
        if lo > hi:
            continue
        first = (lo, min(hi, floor_step(open_at + EDGE - 1)))
        last = (max(lo, ceil_step(hi - EDGE + 1)), hi)
        edges = [
            (OPENING if i == 0 else LUNCH, first),
            (CLOSING if i == len(intervals) - 1 else LUNCH, last),
        ]
        out.append(((lo, hi), edges))
    return out


PROBE_HOURS = (time(7, 30), time(20, 0))  # when a citizen may try a closed service


def closed_ranges(
    calendar: Calendar, spec: CampaignSpec, target: Target, day: date
) -> list[tuple[Range, list[tuple[str, Range]]]]:
    """For a closed-hours probe: the starts of the day's closed spans inside PROBE_HOURS
    (the whole span on a day without opening), each call ending before the next opening.
    Their fragile edges are the quarter-hour after a closing (``closing``, or ``lunch`` in
    the middle of the day) and the one before an opening (``opening``, or ``lunch``)."""
    svc = calendar.m.service(target.service)
    assert svc is not None
    tz = calendar.tz
    lo_day, hi_day = _local(day, PROBE_HOURS[0], tz), _local(day, PROBE_HOURS[1], tz)
    opens = [(_local(day, a, tz), _local(day, b, tz)) for a, b in calendar.intervals(svc, day)]
    spans: list[tuple[int, int, str | None, str | None]] = []  # start, end, after, before
    cursor, after = lo_day, None
    for i, (a, b) in enumerate(opens):
        spans.append((cursor, min(a, hi_day), after, OPENING if i == 0 else LUNCH))
        cursor, after = max(cursor, b), CLOSING if i == len(opens) - 1 else LUNCH
    spans.append((cursor, hi_day, after, None))
    out = []
    for start, end, after_kind, before_kind in spans:
        lo, hi = ceil_step(start), floor_step(end - spec.call_minutes)
        if lo > hi:
            continue
        edges = []
        if after_kind is not None:
            edges.append((after_kind, (lo, min(hi, floor_step(start + EDGE - 1)))))
        if before_kind is not None:
            edges.append((before_kind, (max(lo, ceil_step(hi - EDGE + 1)), hi)))
        out.append(((lo, hi), edges))
    return out


def availability_for(spec: CampaignSpec, tz: ZoneInfo) -> Availability:
    """When evaluators may start a call. A probe is placed by Twilio, not by a person: the
    evaluator who completes its grid later need not be free at its time."""
    if spec.mode == "probe":
        anyone = [replace(e, availability=None, unavailable=frozenset()) for e in spec.evaluators]
        return Availability(anyone, spec.call_minutes, tz)
    return Availability(spec.evaluators, spec.call_minutes, tz)


def target_leaves(
    calendar: Calendar,
    spec: CampaignSpec,
    target: Target,
    avail: Availability,
    not_before: int | None,
) -> tuple[list[Leaf], int]:
    """The target's leaves (half-days with at least one candidate start), and how many
    half-days the calendar opens before evaluators' availability is applied."""
    tz = calendar.tz
    monday = spec.starts_on - timedelta(days=spec.starts_on.weekday())
    later = [(ceil_step(not_before), 1 << 40)] if not_before is not None else None
    leaves: list[Leaf] = []
    opened = 0
    for day in days(spec.starts_on, spec.ends_on):
        ranges_of = closed_ranges if spec.mode == "probe" else opening_ranges
        intervals = ranges_of(calendar, spec, target, day)
        if not intervals:
            continue
        noon = _local(day, NOON, tz)
        anyone = avail.union(day)
        halves: dict[int, Leaf] = {}
        seen: set[int] = set()
        for (lo, hi), edges in intervals:
            for half, a, b in ((MORNING, lo, min(hi, noon - STEP)), (AFTERNOON, max(lo, noon), hi)):
                ranges = [(a, b)] if a <= b else []
                if later is not None:
                    ranges = intersect(ranges, later)
                if ranges and half not in seen:
                    seen.add(half)
                    opened += 1
                if anyone is not None:
                    ranges = intersect(ranges, anyone)
                if not ranges:
                    continue
                leaf = halves.setdefault(half, Leaf(day, half, (day - monday).days // 7, []))
                leaf.ranges.extend(ranges)
                for kind, edge in edges:
                    got = intersect(ranges, [edge])
                    if got:
                        leaf.edges.setdefault(kind, []).extend(got)
        leaves.extend(halves[h] for h in sorted(halves))
    return leaves, opened
