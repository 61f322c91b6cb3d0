"""The cross-check of a campaign against the calls its telephony sources recorded (the rule
is ``campaigns/score/crosscheck.py``; this gathers both sides from PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from campaigns import queries
from campaigns.score.crosscheck import Made, Seen, cross_check, made_of, report, window
from campaigns.score.model import TelephonyCheck
from service.privacy import Pseudonymiser


async def telephony_check(
    conn: Any,
    campaign: Mapping[str, Any],
    *,
    secret_key: str | None,
    caller_id: str | None,
    now: datetime,
    tz: ZoneInfo,
) -> TelephonyCheck:
    """``{"checked", "seen", "pending", "discrepancies": [...]}`` for the campaign's results."""
    hash_of = Pseudonymiser(secret_key) if secret_key else None

    def hashed(number: str | None) -> str | None:
        return hash_of(number)[0] if hash_of is not None and number else None

    phones = {e["email"]: e.get("phone") for e in campaign["spec"]["evaluators"]}
    made: list[Made] = []
    pending, by_id = 0, {}
    for r in await queries.calls_made(conn, campaign["id"]):
        m = made_of(r, hashed(caller_id), lambda email: hashed(phones.get(email)))
        if m is None:
            continue
        if window(m)[1] > now:
            pending += 1  # the telephony may still report it
            continue
        made.append(m)
        by_id[m.call_id] = r
    seen = await _seen(conn, made)
    return report(cross_check(made, seen), by_id, pending, tz)


async def _seen(conn: Any, made: list[Made]) -> list[Seen]:
    """The inbound calls recorded on the made calls' numbers within their windows."""
    if not made:
        return []
    found = await queries.inbound_calls_in(conn, [(m.number, *window(m)) for m in made])
    return [Seen(f["id"], f["line"], f["started_at"], f["answered"], f["caller_hash"])
            for f in found]  # fmt: skip
