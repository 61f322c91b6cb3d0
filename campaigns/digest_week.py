"""The mystery calls of one week, for the weekly digest: per campaign that had calls that
week, what was planned, done and missed, the mean score and pass rate (overall and per
service), the weakest items, and the calls the telephony saw wrongly. Wired into the digest
by the composition root (``service/app.py``, ``service/cli/main.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from campaigns import queries
from campaigns.crosscheck import telephony_check
from campaigns.grids.model import Grid
from campaigns.grids.store import stored_grid
from campaigns.score.results import CallRow, EvalRow, figures, item_figures
from service.digest.build import MysterySource
from service.digest.model import MysteryService, MysteryWeek
from service.municipality.model import Municipality
from service.settings import Settings

WEAKEST = 3


def week_of_campaign(
    campaign_id: int,
    name: str,
    grid: Grid,
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    services: Mapping[str, str],
    now: datetime,
    discrepancies: int = 0,
) -> MysteryWeek:
    """The figures of a campaign's calls of the week (pure): ``calls`` are those of the
    week, cancelled ones left out unless they were evaluated anyway."""
    calls = [c for c in calls if c.status != "cancelled" or c.id in evals]
    overall = figures(calls, evals, now, grid.scale)
    per_service = []
    for slug in dict.fromkeys(c.service for c in calls):
        mine = [c for c in calls if c.service == slug]
        f = figures(mine, evals, now, grid.scale)
        if f["done"]:
            per_service.append(
                MysteryService(
                    slug, services.get(slug, slug), f["done"], f["mean_score"], f["pass_rate"]
                )
            )
    done = [evals[c.id] for c in calls if c.id in evals]
    items = [
        (i["label"], v) for i in item_figures(grid, done) if (v := i["mean_value"]) is not None
    ]
    items.sort(key=lambda i: (i[1], i[0]))  # weakest first, then by label
    return MysteryWeek(
        campaign_id=campaign_id,
        name=name,
        grid_name=grid.name,
        scale=grid.scale,
        planned=overall["planned"],
        done=overall["done"],
        missed=overall["missed"],
        mean_score=overall["mean_score"],
        pass_rate=overall["pass_rate"],
        too_few=overall["too_few"],
        services=per_service,
        weakest=[(label, value) for label, value in items[:WEAKEST] if value < 1],
        discrepancies=discrepancies,
    )


def mystery_source(settings: Settings) -> MysterySource:
    """The digest's mystery-call section, with what the cross-check needs."""

    async def weeks(
        pool: asyncpg.Pool, m: Municipality, first: date, last: date, now: datetime
    ) -> list[MysteryWeek]:
        lo = datetime.combine(first, time(0), tzinfo=m.tz)
        hi = datetime.combine(last + timedelta(days=1), time(0), tzinfo=m.tz)
        services = {s.slug: s.name for s in m.services}
        out = []
        async with pool.acquire() as conn:
            for campaign_id in await queries.campaigns_with_calls(conn, lo, hi):
                week = await _week(conn, settings, campaign_id, (lo, hi), services, now, m.tz)
                if week is not None:
                    out.append(week)
        return out

    return weeks


async def _week(
    conn: Any,
    settings: Settings,
    campaign_id: int,
    period: tuple[datetime, datetime],
    services: Mapping[str, str],
    now: datetime,
    tz: ZoneInfo,
) -> MysteryWeek | None:
    """One campaign's week (``period``: [lo, hi)); None when it had no call then."""
    lo, hi = period
    row = await queries.get_campaign(conn, campaign_id)
    if row is None:
        return None
    calls = [
        queries.record_as(CallRow, c)
        for c in await queries.current_calls(conn, row["id"])
        if lo <= c["scheduled_at"] < hi
    ]
    if not calls:
        return None
    evals = {
        e["mystery_call_id"]: EvalRow.of(e) for e in await queries.evaluations_of(conn, row["id"])
    }
    check = await telephony_check(
        conn,
        row,
        secret_key=settings.secret_key,
        caller_id=settings.twilio_caller_id,
        now=now,
        tz=tz,
    )
    week_ids = {c.id for c in calls}
    wrong = sum(1 for f in check["discrepancies"] if f["call"] in week_ids)
    grid = await stored_grid(conn, row["grid_id"])
    return week_of_campaign(row["id"], row["name"], grid, calls, evals, services, now, wrong)
