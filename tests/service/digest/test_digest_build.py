"""The digest's figures: the API's for that week (the DST week of October 2026), the week
before and the four-week trend, the worst half-hours against the truth, the call-backs the
API lists, a week with no calls."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from service.callbacks.listing import open_callbacks
from service.digest.build import build_digest
from service.digest.payload import digest_json
from service.digest.weeks import IsoWeek
from service.keys import DB_POOL
from service.municipality.calendar import Calendar
from tests.service.metrics.test_engagement8 import assert_figures, ingest, reference
from tests.support.digest import WEEK, municipality, truth_half_hours, weeks_of_calls

Client = TestClient[web.Request, web.Application]
NOW = datetime(2026, 10, 26, 6, 30, tzinfo=UTC)  # Monday 07:30 in Paris, winter time


async def api(client: Client, week: IsoWeek) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/engagement8?from={week.monday}&to={week.sunday}")
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def test_the_figures_are_the_apis_for_the_week_before_and_the_trend(
    client: Client,
) -> None:
    calls = weeks_of_calls()
    await ingest(client, calls)
    m = municipality()
    digest = await build_digest(client.app[DB_POOL], m, WEEK, now=NOW)

    expected = await api(client, WEEK)
    assert [s.slug for s in digest.services] == [s["service"] for s in expected["services"]]
    assert [s.slug for s in digest.services] == ["accueil", "etat-civil", "astreinte", None]
    for got, want in zip(digest.services, expected["services"], strict=True):
        assert got.figures == want
        assert_figures(got.figures, reference(calls, m, WEEK.monday, WEEK.sunday, got.slug))
    assert digest.total.figures == expected["total"]
    # The DST Sunday's last second and both of its 02:30s belong to this week, Monday 00:00:01
    # after it to the next: astreinte received 4 calls a day, 28 this week, plus those 3.
    astreinte = digest.services[2]
    assert astreinte.figures["received"] == 7 * 4 + 3

    before = await api(client, WEEK.shift(-1))
    for got, want in zip(digest.services, before["services"], strict=False):
        assert got.previous == want
    ec = digest.services[1]
    assert (
        ec.delta("answer_rate")
        == expected["services"][1]["answer_rate"] - before["services"][1]["answer_rate"]
    )

    trend_weeks = [WEEK.shift(-3), WEEK.shift(-2), WEEK.shift(-1), WEEK]
    assert [p.week for p in ec.trend] == trend_weeks
    for point, week in zip(ec.trend, trend_weeks, strict=True):
        want = (await api(client, week))["services"][1]
        assert (point.answer_rate, point.service_level, point.lost) == (
            want["answer_rate"],
            want["service_level"],
            want["lost"],
        )
    assert [p.answer_rate for p in digest.total.trend][-1] == expected["total"]["answer_rate"]


async def test_the_worst_half_hours_are_those_that_lost_most(client: Client) -> None:
    calls = weeks_of_calls(seed=11)
    await ingest(client, calls)
    m = municipality()
    digest = await build_digest(client.app[DB_POOL], m, WEEK, now=NOW)
    truth = truth_half_hours(calls, m, WEEK)
    for s in digest.services:
        if s.slug is None:
            assert s.worst == ()
            continue
        got = [(h.day, h.slot, h.offered, h.lost) for h in s.worst]
        assert got == truth[s.slug][:3], s.slug
    assert digest.services[1].worst, "état civil lost calls in its hours this week"


async def test_open_callbacks_are_the_lists_as_of_sending(client: Client) -> None:
    await ingest(client, weeks_of_calls())
    pool, m = client.app[DB_POOL], municipality()
    # What « rappels à faire » (/api/v1/callbacks, the wall) lists at the sending time.
    listed = await open_callbacks(pool, Calendar(m), NOW)
    assert len(listed) > 5
    digest = await build_digest(pool, m, WEEK, now=NOW)
    for s in digest.services:
        mine = [c for c in listed if c.service.slug == s.slug]
        assert s.callbacks_open == (len(mine) if s.slug else 0)
        assert s.callbacks_overdue == (sum(c.overdue(NOW) for c in mine) if s.slug else 0)
    assert digest.total.callbacks_open == len(listed)
    assert digest.total.callbacks_overdue == sum(c.overdue(NOW) for c in listed) > 0
    # Built as of a moment before every call, nothing is open yet.
    before = datetime.combine(WEEK.shift(-4).monday, time(0), tzinfo=UTC)
    early = await build_digest(pool, m, WEEK, now=before)
    assert early.total.callbacks_open == 0
    # Six weeks later the numbers are erased (privacy.keep_numbers_days): nobody to call.
    late = await build_digest(pool, m, WEEK, now=NOW + timedelta(days=42))
    assert late.total.callbacks_open == 0


async def test_a_week_with_no_calls(client: Client) -> None:
    digest = await build_digest(client.app[DB_POOL], municipality(), WEEK, now=NOW)
    assert all(s.figures["received"] == 0 and s.met is None for s in digest.services)
    assert [s.slug for s in digest.services] == ["accueil", "etat-civil", "astreinte"]
    assert digest.judged() == []
    assert all(p.answer_rate is None for p in digest.total.trend)
    data = digest_json(digest)
    assert data["headline"] == "Aucun appel présenté cette semaine"
    assert data["total"]["answer_rate"] is None


async def test_the_api_serves_the_digest_of_a_week(client: Client) -> None:
    await ingest(client, weeks_of_calls())
    resp = await client.get(f"/api/v1/digest?week={WEEK}")
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["week"] == "2026-W43"
    assert data["period"] == {"from": "2026-10-19", "to": "2026-10-25", "timezone": "Europe/Paris"}
    expected = await api(client, WEEK)
    for got, want in zip(data["services"], expected["services"], strict=True):
        assert {k: got[k] for k in want} == want
    assert data["send_at"] == "2026-10-26T07:30:00+01:00"
    assert data["deliveries"] == []


async def test_bad_weeks_are_clear_400s(client: Client) -> None:
    for week, why in (("2026-48", "is not an ISO week"), ("2026-W54", "has no week 54")):
        resp = await client.get(f"/api/v1/digest?week={week}")
        assert resp.status == 400
        body = await resp.json()
        assert body["field"] == "week"
        assert why in body["error"]
    resp = await client.get("/api/v1/digest/preview?week=2026-W43&for=nobody@ville.test")
    assert resp.status == 400
    assert "not a recipient" in (await resp.json())["error"]
