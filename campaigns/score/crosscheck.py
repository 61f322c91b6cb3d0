"""Did the telephony see the mystery calls? (pure) — the cross-check of a campaign.

Every mystery call that was really made is looked for among the inbound calls the
telephony sources recorded on its target number:

- an **assisted** call or a **probe**, from a minute before Décroché placed it (clocks
  differ) to ``PLACED_WINDOW`` after (the evaluator picks up, hears the briefing, then the target
  rings), coming from ``DECROCHE_TWILIO_CALLER_ID``;
- a **manual** call with an evaluation, from ``MANUAL_BEFORE`` before its slot to
  ``MANUAL_AFTER`` after (evaluators are not exact), coming from the evaluator's phone when
  the campaign gives it.

A recorded call from the expected number wins; a call with a withheld number comes next
(the caller's number may not be presented); when the expected number is unknown, the call
nearest the expected time. Each recorded call explains one mystery call at most.

A mystery call that no recorded call explains was **not seen** — an ingestion gap (a source
not connected, a webhook lost). An assisted call the service answered (Twilio says so)
that the telephony recorded as not answered, or the reverse, was **seen otherwise**. Calls
Twilio could not connect (the evaluator did not answer, the line was busy, a failure) are
not looked for: the telephony cannot have seen them.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.score.model import FindingJson, TelephonyCheck

PLACED_WINDOW = timedelta(minutes=5)
MANUAL_BEFORE = timedelta(minutes=30)
MANUAL_AFTER = timedelta(minutes=90)
LOOKED_FOR = {"answered", "target-no-answer"}  # outcomes the telephony must have seen


@dataclass(frozen=True)
class Made:
    """A mystery call that was made, as the campaign knows it."""

    call_id: int
    mode: str
    number: str
    expected_at: datetime  # placed (assisted, probe) or planned (manual)
    caller_hash: str | None  # of the number it came from, when known
    answered: bool | None  # as Twilio saw it (assisted, probe); None: unknown


@dataclass(frozen=True)
class Seen:
    """An inbound call the telephony recorded."""

    id: int
    line: str | None
    started_at: datetime
    answered: bool
    caller_hash: str | None


@dataclass(frozen=True)
class Finding:
    call_id: int
    seen_id: int | None
    problem: str | None  # None: seen as expected

    def as_dict(self) -> FindingJson:
        return {"call": self.call_id, "telephony_call": self.seen_id, "problem": self.problem}


def made_of(
    call: Mapping[str, Any],
    caller_hash: str | None,
    evaluator_hash: Callable[[str], str | None],
) -> Made | None:
    """What the telephony should have recorded of a stored call and its run (a row of
    ``campaigns.queries.calls_made``); None when there is nothing to look for.
    ``caller_hash``: of the number assisted calls and probes come from; ``evaluator_hash``:
    of an evaluator's phone, by e-mail."""
    if call["kind"] is not None and call["outcome"] in LOOKED_FOR:
        answered = call["outcome"] == "answered" if call["kind"] == "assisted" else None
        return Made(
            call["id"], call["kind"], call["number"], call["placed_at"], caller_hash, answered
        )
    if call["mode"] == "manual" and call["evaluated"]:
        return Made(call["id"], "manual", call["number"], call["scheduled_at"],
                    evaluator_hash(call["evaluator"]), None)  # fmt: skip
    return None


def window(m: Made) -> tuple[datetime, datetime]:
    if m.mode == "manual":
        return m.expected_at - MANUAL_BEFORE, m.expected_at + MANUAL_AFTER
    return m.expected_at - timedelta(minutes=1), m.expected_at + PLACED_WINDOW


def cross_check(made: Sequence[Made], seen: Sequence[Seen]) -> list[Finding]:
    """One finding per made call, in the order given (earliest first is fairest: an early
    call takes its recorded call before a later one could)."""
    used: set[int] = set()
    by_line: dict[str | None, list[Seen]] = {}
    for s in sorted(seen, key=lambda s: s.started_at):
        by_line.setdefault(s.line, []).append(s)
    starts = {line: [s.started_at for s in calls] for line, calls in by_line.items()}
    out = []
    for m in made:
        lo, hi = window(m)
        calls = by_line.get(m.number, [])
        first = bisect.bisect_left(starts.get(m.number, []), lo)
        last = bisect.bisect_right(starts.get(m.number, []), hi)
        here = [s for s in calls[first:last] if s.id not in used]
        best = _best(m, here)
        if best is None:
            out.append(Finding(m.call_id, None, "not seen by the telephony (ingestion gap?)"))
            continue
        used.add(best.id)
        problem = None
        if m.mode == "assisted" and m.answered is not None and m.answered != best.answered:
            said = "answered" if best.answered else "not answered"
            twilio = "answered" if m.answered else "not answered"
            problem = f"seen as {said}, while Twilio saw it {twilio}"
        out.append(Finding(m.call_id, best.id, problem))
    return out


def _best(m: Made, here: list[Seen]) -> Seen | None:
    def near(s: Seen) -> float:
        return abs((s.started_at - m.expected_at).total_seconds())

    if m.caller_hash is not None:
        same = [s for s in here if s.caller_hash == m.caller_hash]
        withheld = [s for s in here if s.caller_hash is None]
        here = same or withheld
    return min(here, key=near, default=None)


def report(
    findings: Sequence[Finding],
    calls: Mapping[int, Mapping[str, Any]],
    pending: int,
    tz: ZoneInfo,
) -> TelephonyCheck:
    """``{"checked", "seen", "pending", "discrepancies": [...]}``: the findings' figures and
    each wrong one with its call's mode, number and local time (``calls`` by id)."""
    return {
        "checked": len(findings),
        "seen": sum(f.seen_id is not None for f in findings),
        "pending": pending,
        "discrepancies": [
            {
                **f.as_dict(),
                "mode": calls[f.call_id]["mode"],
                "number": calls[f.call_id]["number"],
                "scheduled_at": calls[f.call_id]["scheduled_at"].astimezone(tz).isoformat(),
            }
            for f in findings
            if f.problem is not None
        ],
    }
