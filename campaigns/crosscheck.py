"""The cross-check of a campaign against the calls its telephony sources recorded (the rule
is ``campaigns/score/crosscheck.py``; this gathers both sides from PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.score.crosscheck import LOOKED_FOR, Made, Seen, cross_check, window
from service.privacy import Pseudonymiser

MADE = """
SELECT m.id, m.mode, m.number, m.scheduled_at, m.evaluator, r.placed_at, r.outcome, r.kind,
       EXISTS (SELECT 1 FROM evaluations e WHERE e.mystery_call_id = m.id) AS evaluated
FROM mystery_calls m LEFT JOIN mystery_runs r ON r.mystery_call_id = m.id
WHERE m.campaign_id = $1 AND m.status <> 'replanned'
ORDER BY coalesce(r.placed_at, m.scheduled_at), m.id
"""


async def telephony_check(
    conn: Any,
    campaign: Mapping[str, Any],
    *,
    secret_key: str | None,
    caller_id: str | None,
    now: datetime,
    tz: ZoneInfo,
) -> dict[str, Any]:
    """``{"checked", "seen", "pending", "discrepancies": [...]}`` for the campaign's results."""
    hash_of = Pseudonymiser(secret_key) if secret_key else None

    def hashed(number: str | None) -> str | None:
        return hash_of(number)[0] if hash_of is not None and number else None

    phones = {e["email"]: e.get("phone") for e in campaign["spec"]["evaluators"]}
    rows = await conn.fetch(MADE, campaign["id"])
    made, pending, by_id = [], 0, {}
    for r in rows:
        if r["kind"] is not None and r["outcome"] in LOOKED_FOR:
            answered = r["outcome"] == "answered" if r["kind"] == "assisted" else None
            m = Made(r["id"], r["kind"], r["number"], r["placed_at"], hashed(caller_id), answered)
        elif r["mode"] == "manual" and r["evaluated"]:
            m = Made(r["id"], "manual", r["number"], r["scheduled_at"],
                     hashed(phones.get(r["evaluator"])), None)  # fmt: skip
        else:
            continue
        if window(m)[1] > now:
            pending += 1  # the telephony may still report it
            continue
        made.append(m)
        by_id[m.call_id] = r
    seen: list[Seen] = []
    if made:
        # Only the calls inside some window (calls_line_started serves each one).
        windows = [window(m) for m in made]
        found = await conn.fetch(
            "SELECT DISTINCT c.id, c.line, c.started_at, c.answered, c.caller_hash "
            "FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS w(line, lo, hi) "
            "JOIN calls c ON c.line = w.line AND c.started_at BETWEEN w.lo AND w.hi "
            "WHERE c.direction = 'inbound'",
            [m.number for m in made],
            [lo for lo, _ in windows],
            [hi for _, hi in windows],
        )
        seen = [Seen(f["id"], f["line"], f["started_at"], f["answered"], f["caller_hash"])
                for f in found]  # fmt: skip
    findings = cross_check(made, seen)
    wrong = [f for f in findings if f.problem is not None]
    return {
        "checked": len(findings),
        "seen": sum(f.seen_id is not None for f in findings),
        "pending": pending,
        "discrepancies": [
            {
                **f.as_dict(),
                "mode": by_id[f.call_id]["mode"],
                "number": by_id[f.call_id]["number"],
                "scheduled_at": by_id[f.call_id]["scheduled_at"].astimezone(tz).isoformat(),
            }
            for f in wrong
        ],
    }
