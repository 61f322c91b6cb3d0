"""Engagement 8 figures against a straightforward reference computed here from the truth of
generated calls: lunch breaks, interval edges, thresholds, holidays, closures, DST Sundays,
per-service overrides, an unknown line, an empty period."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.demo.traffic import SimCall, TrafficGenerator, build_callbacks
from service.keys import FOLDER, INGESTOR
from service.metrics.definitions import FIGURES
from service.metrics.report import engagement8
from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, load_municipality
from tests.conftest import TEST_CONFIG
from webhooks import twilio as twilio_adapter

M = load_municipality(TEST_CONFIG)
PARIS = ZoneInfo("Europe/Paris")
FIGURE_KEYS = FIGURES

Client = TestClient[web.Request, web.Application]


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=PARIS).astimezone(UTC)


_n = 0


def call(line: str, start: datetime, answered: bool, wait: int, topology: str = "dial") -> SimCall:
    global _n
    _n += 1
    c = SimCall(
        f"CA{_n:032d}",
        line,
        f"+3361{_n:07d}",
        topology,
        start,
        answered,
        wait,
        45 if answered else 0,
        agents=2,
    )
    build_callbacks(c, random.Random(_n))
    return c


async def ingest(client: Client, calls: list[SimCall]) -> None:
    now = datetime.now(UTC)
    pairs = [(twilio_adapter.parse(p, now), p) for c in calls for _, p in c.callbacks]
    for i in range(0, len(pairs), 200):
        await client.app[INGESTOR].ingest(pairs[i : i + 200])
    await client.app[FOLDER].catch_up()


def reference(
    calls: list[SimCall], m: Municipality, first: date, last: date, slug: str | object | None = ...
) -> dict[str, Any]:
    """The figures of the contract, computed the obvious way, one call at a time."""
    cal = Calendar(m)
    rows = []
    for c in calls:
        if not first <= c.started_at.astimezone(m.tz).date() <= last:
            continue
        svc = m.service_for(c.line, None)
        if slug is not ... and (svc.slug if svc else None) != slug:
            continue
        rows.append((c, svc, cal.in_hours(svc, c.started_at)))
    policy = m.service(slug).policy if isinstance(slug, str) else m.policy  # type: ignore[union-attr]
    received = len(rows)
    out = sum(1 for _, _, ih in rows if not ih)
    short = [
        c
        for c, s, ih in rows
        if ih and not c.answered and s is not None and c.wait_s < s.policy.short_abandon_s
    ]
    offered = [c for c, s, ih in rows if ih and c not in short]
    answered = [c for c in offered if c.answered]
    within = [
        c
        for c, s, ih in rows
        if ih and c.answered and s is not None and c.wait_s <= s.policy.answer_within_s
    ]
    waits = [float(c.wait_s) for c in answered]
    ar = len(answered) / len(offered) if offered else None
    sl = len(within) / len(offered) if offered else None
    return {
        "received": received,
        "out_of_hours": out,
        "short_abandoned": len(short),
        "offered": len(offered),
        "answered": len(answered),
        "answered_within": len(within),
        "lost": len(offered) - len(answered),
        "answer_rate": ar,
        "service_level": sl,
        "asa_s": round(sum(waits) / len(waits), 3) if waits else None,
        "wait_p90_s": round(float(np.percentile(waits, 90)), 3) if waits else None,
        "max_wait_s": max((float(c.wait_s) for c in offered), default=None),
        "met": None
        if ar is None or sl is None
        else (ar >= policy.target_answer_rate and sl >= policy.target_service_level),
    }


def assert_figures(got: Mapping[str, Any], want: dict[str, Any]) -> None:
    for k in FIGURE_KEYS:
        if isinstance(want[k], float):
            assert got[k] == pytest.approx(want[k]), k
        else:
            assert got[k] == want[k], k


def edge_calls() -> list[SimCall]:
    acc, ec, ast, unknown = "+33100000001", "+33100000002", "+33100000009", "+33999999999"
    return [
        # Monday 16 November 2026, accueil 08:30-12:00 / 13:30-17:30
        call(acc, local(2026, 11, 16, 8, 30), True, 25),  # opening instant; wait = threshold
        call(acc, local(2026, 11, 16, 8, 29, 59), True, 3),  # one second early: out
        call(acc, local(2026, 11, 16, 11, 59, 59), True, 26),  # last second; just over
        call(acc, local(2026, 11, 16, 12, 0, 0), False, 30),  # lunch starts: out, not lost
        call(acc, local(2026, 11, 16, 13, 30), False, 4, "queue"),  # short abandon (< 5)
        call(acc, local(2026, 11, 16, 13, 31), False, 5),  # 5 s is not short: lost
        call(acc, local(2026, 11, 16, 17, 29, 59), True, 61, "queue"),
        call(acc, local(2026, 11, 16, 17, 30), True, 2),  # closing instant: out
        # état civil: answer_within_s overridden to 20
        call(ec, local(2026, 11, 16, 9, 0), True, 20),
        call(ec, local(2026, 11, 16, 9, 5), True, 21),
        call(ec, local(2026, 11, 2, 9, 0), True, 5),  # its own closure day
        call(ec, local(2026, 11, 11, 10, 0), False, 40),  # Armistice: national holiday
        call(ec, local(2026, 12, 24, 10, 0), True, 9),  # global closure
        call(acc, local(2026, 12, 26, 10, 0), True, 7),  # Saturday: St Stephen in Alsace-Moselle
        call(acc, local(2026, 4, 3, 9, 0), True, 12),  # Good Friday: Alsace-Moselle only
        # DST Sundays, astreinte open around the clock
        call(ast, local(2026, 3, 29, 1, 59, 59), True, 10),
        call(ast, local(2026, 3, 29, 3, 0, 0), False, 50),
        call(ast, local(2026, 3, 29, 23, 59, 59), True, 1),
        call(ast, local(2026, 10, 25, 0, 0, 0), False, 2),
        call(ast, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True, 33),  # first 02:30 CEST
        call(ast, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), True, 44),  # second 02:30 CET
        call(ast, local(2026, 10, 25, 23, 59, 59), True, 8),
        call(unknown, local(2026, 11, 16, 10, 0), True, 5),
    ]


async def get(client: Client, query: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/engagement8?{query}")
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (date(2026, 11, 16), date(2026, 11, 16)),
        (date(2026, 11, 1), date(2026, 11, 30)),
        (date(2026, 3, 29), date(2026, 3, 29)),
        (date(2026, 10, 25), date(2026, 10, 25)),
        (date(2026, 1, 1), date(2026, 12, 31)),
    ],
)
async def test_edge_cases_match_the_reference(client: Client, first: date, last: date) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    data = await get(client, f"from={first}&to={last}")
    rows = {r["service"]: r for r in data["services"]}
    assert [r["service"] for r in data["services"]][:3] == ["accueil", "etat-civil", "astreinte"]
    for s in M.services:
        assert_figures(rows[s.slug], reference(calls, M, first, last, s.slug))
    unknown = reference(calls, M, first, last, None)
    if unknown["received"]:
        assert_figures(rows[None], unknown)
        assert rows[None]["name"] == "Ligne inconnue"
    else:
        assert None not in rows
    assert_figures(data["total"], reference(calls, M, first, last))
    assert data["policy"]["answer_within_s"] == 25
    assert data["policy"]["overrides"] == {"etat-civil": {"answer_within_s": 20}}
    assert data["period"] == {"from": str(first), "to": str(last), "timezone": "Europe/Paris"}


async def test_dst_days_are_attributed_by_local_date(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    spring = await get(client, "from=2026-03-29&to=2026-03-29&service=astreinte")
    autumn = await get(client, "from=2026-10-25&to=2026-10-25&service=astreinte")
    assert spring["total"]["received"] == 3  # 01:59:59, 03:00:00 and 23:59:59 local
    assert autumn["total"]["received"] == 4  # both 02:30s counted, 25-hour day
    assert autumn["total"]["short_abandoned"] == 1


async def test_alsace_moselle_holidays_change_the_figures(client: Client, db: Any) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    am = replace(M, holiday_zone="alsace-moselle")
    pool = client.app[INGESTOR]._pool
    for day in (date(2026, 4, 3), date(2026, 12, 26)):
        metro = await engagement8(pool, M, day, day, "accueil")
        alsace = await engagement8(pool, am, day, day, "accueil")
        assert metro["total"]["out_of_hours"] == 0
        assert alsace["total"]["out_of_hours"] == 1
        assert_figures(alsace["total"], reference(calls, am, day, day, "accueil"))


async def test_generated_weeks_match_the_reference(client: Client) -> None:
    calls: list[SimCall] = []
    gen = TrafficGenerator(M, seed=11)
    for d in range(14):
        calls += gen.day(date(2026, 11, 9) + timedelta(days=d))
    await ingest(client, calls)
    data = await get(client, "from=2026-11-09&to=2026-11-22")
    rows = {r["service"]: r for r in data["services"]}
    for s in M.services:
        assert_figures(
            rows[s.slug], reference(calls, M, date(2026, 11, 9), date(2026, 11, 22), s.slug)
        )
    assert_figures(data["total"], reference(calls, M, date(2026, 11, 9), date(2026, 11, 22)))
    assert data["total"]["received"] == len(calls)
    # The same totals, broken down by day, add up.
    by_day = await get(client, "from=2026-11-09&to=2026-11-22&by=day")
    assert sum(r["received"] for r in by_day["rows"]) == len(calls)
    assert_figures(by_day["total"], reference(calls, M, date(2026, 11, 9), date(2026, 11, 22)))
    for row in by_day["rows"]:
        day = date.fromisoformat(row["key"])
        assert_figures(row, reference(calls, M, day, day))


async def test_a_changed_threshold_recomputes_history(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    stricter = replace(
        M,
        services=tuple(
            replace(s, policy=replace(s.policy, answer_within_s=10)) for s in M.services
        ),
    )
    pool = client.app[INGESTOR]._pool
    before = await engagement8(pool, M, date(2026, 11, 16), date(2026, 11, 16), "accueil")
    after = await engagement8(pool, stricter, date(2026, 11, 16), date(2026, 11, 16), "accueil")
    assert before["total"]["answered_within"] == 1  # the 25-second wait
    assert after["total"]["answered_within"] == 0
    assert after["services"][0]["policy"]["answer_within_s"] == 10  # type: ignore[index]


async def test_empty_period_has_zeros_and_nulls(client: Client) -> None:
    data = await get(client, "from=2030-01-07&to=2030-01-13")
    for row in [*data["services"], data["total"]]:
        assert row["received"] == 0
        assert row["offered"] == 0
        for k in ("answer_rate", "service_level", "asa_s", "wait_p90_s", "max_wait_s", "met"):
            assert row[k] is None
    assert None not in [r["service"] for r in data["services"]]  # no unknown row when none


async def test_affluence_counts_received_and_lost_by_weekday_and_half_hour(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    resp = await client.get("/api/v1/affluence?from=2026-11-16&to=2026-11-16&service=accueil")
    assert resp.status == 200
    cells = {
        (c["weekday"], c["slot"]): (c["received"], c["lost"]) for c in (await resp.json())["cells"]
    }
    assert cells[(1, "08:00")] == (1, 0)  # 08:29:59, out of hours
    assert cells[(1, "08:30")] == (1, 0)
    assert cells[(1, "13:30")] == (2, 1)  # the short abandon is not lost; the 5 s one is
    assert cells[(1, "17:30")] == (1, 0)
    assert sum(r for r, _ in cells.values()) == 8


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=2026-11-16", "from"),
        ("from=2026-11-16", "to"),
        ("from=2026-11-16&to=2026-11-15", "to"),
        ("from=2020-01-01&to=2026-01-01", "to"),
        ("from=2026-11-16&to=2026-11-16&service=piscine", "service"),
        ("from=2026-11-16&to=2026-11-16&by=moon", "by"),
        ("from=16/11/2026&to=2026-11-16", "from"),
    ],
)
async def test_bad_queries_are_clear_400s(client: Client, query: str, field: str) -> None:
    for path in ("/api/v1/engagement8", "/api/v1/affluence"):
        if "by=" in query and "affluence" in path:
            continue
        resp = await client.get(f"{path}?{query}")
        assert resp.status == 400
        assert (await resp.json())["field"] == field


async def test_every_breakdown_adds_up_to_the_same_total(client: Client) -> None:
    calls = edge_calls()
    await ingest(client, calls)
    whole = await get(client, "from=2026-01-01&to=2026-12-31")
    for by, key_shape in [
        ("week", "2026-W47"),
        ("hour", "08"),
        ("line", "+33100000001"),
        ("agent", "+33611987094"),  # the agent leg's number, as the child leg's To
    ]:
        data = await get(client, f"from=2026-01-01&to=2026-12-31&by={by}")
        assert data["by"] == by
        assert_figures(data["total"], reference(calls, M, date(2026, 1, 1), date(2026, 12, 31)))
        assert sum(r["received"] for r in data["rows"]) == whole["total"]["received"]
        keys = [r["key"] for r in data["rows"]]
        assert keys == sorted(keys, key=lambda k: k or "")
        assert any(k is not None and len(k) == len(key_shape) for k in keys), (by, keys)
    by_week = await get(client, "from=2026-11-16&to=2026-11-22&by=week")
    assert [r["key"] for r in by_week["rows"]] == ["2026-W47"]
    # The late DST calls: 23:59:59 on 25 October is hour 23 of that local day.
    by_hour = await get(client, "from=2026-10-25&to=2026-10-25&by=hour&service=astreinte")
    assert {r["key"]: r["received"] for r in by_hour["rows"]} == {"00": 1, "02": 2, "23": 1}
