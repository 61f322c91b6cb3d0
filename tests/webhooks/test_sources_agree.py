"""One truth, three sources: the same simulated calls fed as Twilio callbacks, as an Asterisk
queue_log and as CDR JSON give the same calls and the same Engagement 8 figures."""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestClient

from service.cli.imports import import_asterisk
from service.demo.pbx import cdr_row, queue_log
from service.demo.simulate import Sender
from service.demo.traffic import SimCall, TrafficGenerator, build_callbacks
from service.keys import DB_POOL, FOLDER
from service.metrics.model import Engagement8Report
from service.metrics.report import engagement8
from service.municipality.calendar import Calendar
from service.privacy import Pseudonymiser
from tests.conftest import AUTH_TOKEN
from tests.webhooks.test_asterisk import PARIS, M
from webhooks import signing

# Three Thursdays with the same hours and no holiday: one per source.
TWILIO_DAY, ASTERISK_DAY, CDR_DAY = date(2026, 11, 19), date(2026, 11, 26), date(2026, 12, 3)


def moved(call: SimCall, days: int, rng: random.Random) -> SimCall:
    """The same call a whole number of weeks later (the same local hours: no DST between)."""
    later = replace(
        call,
        sid=call.sid[:-4] + f"{days:04d}",
        started_at=call.started_at + timedelta(days=days),
        callbacks=[],
    )
    build_callbacks(later, rng)
    return later


def comparable(figures: Engagement8Report) -> dict[str, Any]:
    return {"services": figures["services"], "total": figures["total"]}


async def calls_of(db: asyncpg.Connection, source: str) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT started_at, answered, wait_s, ended_at - started_at AS length, disposition "
        "IS NOT NULL AS over FROM calls WHERE source = $1 AND direction = 'inbound' "
        "ORDER BY started_at, wait_s",
        source,
    )
    return [tuple(r.values()) for r in rows]


async def test_twilio_queue_log_and_cdr_give_the_same_figures(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pool = client.app[DB_POOL]
    gen = TrafficGenerator(M, seed=11)
    truth = gen.day(TWILIO_DAY)
    assert {c.topology for c in truth} == {"dial", "queue", "closed"}
    assert len(truth) > 60
    rng = random.Random(5)

    # Twilio: every callback, signed, through the webhook, shuffled (no order guarantee).
    url = f"http://{client.host}:{client.port}/webhooks/twilio"
    callbacks = [params for call in truth for _, params in call.callbacks]
    rng.shuffle(callbacks)
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, url, AUTH_TOKEN)
        for params in callbacks:
            assert await sender.send(params) == 200

    # Asterisk: the queue_log of the same calls a week later, imported from a file.
    week = [moved(c, 7, rng) for c in truth]
    log = tmp_path / "queue_log"
    log.write_text("".join(line + "\n" for line in queue_log(week, M, seed=3)))
    report = await import_asterisk(pool, log, PARIS, Pseudonymiser("test-secret-key"))
    assert report.refused == 0

    # CDR: the same calls two weeks later, as one signed JSON batch.
    fortnight = [moved(c, 14, rng) for c in truth]
    body = json.dumps({"calls": [cdr_row(c) for c in fortnight]}).encode()
    header = signing.sign("test-webhook-secret", body, int(time.time()))
    resp = await client.post("/webhooks/cdr", data=body, headers={signing.HEADER: header})
    assert resp.status == 200
    assert (await resp.json())["accepted"] == len(truth)
    await client.app[FOLDER].catch_up()

    twilio_calls = await calls_of(db, "twilio")
    asterisk_calls = await calls_of(db, "asterisk")
    cdr_calls = await calls_of(db, "cdr")
    assert len(twilio_calls) == len(truth)

    def shifted(rows: list[tuple[Any, ...]], days: int) -> list[tuple[Any, ...]]:
        return [(r[0] - timedelta(days=days), *r[1:]) for r in rows]

    assert shifted(asterisk_calls, 7) == twilio_calls
    assert shifted(cdr_calls, 14) == twilio_calls

    by_twilio = await engagement8(pool, M, TWILIO_DAY, TWILIO_DAY)
    by_asterisk = await engagement8(pool, M, ASTERISK_DAY, ASTERISK_DAY)
    by_cdr = await engagement8(pool, M, CDR_DAY, CDR_DAY)
    assert by_twilio["total"]["offered"] > 40
    assert by_twilio["total"]["lost"] > 0
    assert comparable(by_asterisk) == comparable(by_twilio)
    assert comparable(by_cdr) == comparable(by_twilio)


def test_the_three_days_share_their_calendar() -> None:
    # What makes the comparison fair: same weekday, same hours, no holiday, same offset.
    for day in (ASTERISK_DAY, CDR_DAY):
        assert day.weekday() == TWILIO_DAY.weekday()
        at = datetime.combine(day, datetime.min.time(), PARIS)
        assert (
            at.utcoffset() == datetime.combine(TWILIO_DAY, datetime.min.time(), PARIS).utcoffset()
        )
        assert day not in M.closures
        assert Calendar(M).holiday(day) is None
