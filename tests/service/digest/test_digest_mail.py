"""Sending the digest to aiosmtpd, a real SMTP server: the message's structure (mixed,
alternative, related; inline charts referenced by Content-ID; the CSV of the API's
figures), each recipient's order, exactly once (a second run, two instances), a refusing
server retried with back-off, a lost answer never resent, the catch-up window, /metrics."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.digest import queries as q
from service.digest.delivery import (
    MAX_ATTEMPTS,
    STALE_CLAIM,
    DigestSender,
    backoff,
    recipients,
)
from service.keys import DB_POOL, METRICS
from service.outside.mail import Mailer
from tests.service.metrics.test_engagement8 import ingest
from tests.support.digest import CHEF_EC, DGS, MAIRE, WEEK, municipality, weeks_of_calls
from tests.support.smtp import Inbox

Client = TestClient[web.Request, web.Application]
DUE = datetime(2026, 10, 26, 6, 30, tzinfo=UTC)  # Monday 26 October, 07:30 in Paris (CET)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sender(client: Client, smtp_url: str, clock: Clock, **kw: Any) -> DigestSender:
    return DigestSender(
        client.app[DB_POOL],
        municipality(),
        Mailer(smtp_url, "Décroché <decroche@ville.test>", timeout_s=kw.pop("timeout_s", 20)),
        clock=clock,
        link="https://decroche.ville.test/",
        **kw,
    )


def parts(msg: EmailMessage) -> list[str]:
    return [p.get_content_type() for p in msg.walk()]


async def test_each_recipient_gets_one_well_formed_message(
    client: Client, inbox: Inbox, smtp_url: str
) -> None:
    await ingest(client, weeks_of_calls())
    outcomes = await sender(client, smtp_url, Clock(DUE)).weekly()
    assert sorted((o.recipient, o.result) for o in outcomes) == [
        (CHEF_EC, "sent"),
        (DGS, "sent"),
        (MAIRE, "sent"),
    ]
    assert sorted(str(m["To"]) for _, m in inbox.messages) == sorted([CHEF_EC, DGS, MAIRE])

    msg = inbox.to(DGS)[0]
    assert parts(msg) == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "image/png",
        "text/csv",
    ]
    resp = await client.get(f"/api/v1/engagement8?from={WEEK.monday}&to={WEEK.sunday}")
    api = await resp.json()
    verdicts = [s["met"] for s in api["services"] if s["met"] is not None]
    assert (sum(verdicts), len(verdicts)) == (2, 3)  # état civil does not keep it
    assert msg["Subject"] == (
        "Décroché — semaine 43 (du 19 au 25 octobre 2026) : engagement tenu par 2 services sur 3"
    )
    assert msg["From"] == "Décroché <decroche@ville.test>"
    assert msg["Auto-Submitted"] == "auto-generated"
    html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
    html = html_part.get_content()
    images = [p for p in msg.walk() if p.get_content_type() == "image/png"]
    for img in images:
        assert isinstance(img, EmailMessage)
        cid = img["Content-ID"].strip().strip("<>")
        assert f'src="cid:{cid}"' in html
        assert img.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    # Inlined for Outlook: styles on the elements themselves; the one <style> block left
    # holds only the phone media query (which cannot be inlined).
    blocks = re.findall(r"<style>(.*?)</style>", html, re.S)
    assert len(blocks) == 1
    assert blocks[0].lstrip().startswith("@media (max-width: 600px)")
    assert blocks[0].count("{") == blocks[0].count("}")
    assert ".card" not in blocks[0]
    assert re.search(r'<h1 style="[^"]*font-size: 22px', html)
    assert "Engagement tenu par 2 services sur 3" in html
    text = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "Engagement tenu par 2 services sur 3" in text
    assert "Là où ça coince :\n- État civil : " in text

    attachment = next(msg.iter_attachments())
    assert attachment.get_filename() == "decroche-2026-W43.csv"
    rows = list(csv.DictReader(io.StringIO(attachment.get_content())))
    by_key = {r["service"]: r for r in rows}
    assert list(by_key) == ["accueil", "etat-civil", "astreinte", "", "total"]
    for want, key in [*((s, s["service"] or "") for s in api["services"]), (api["total"], "total")]:
        row = by_key[key]
        for k in ("received", "out_of_hours", "offered", "answered", "lost"):
            assert int(row[k]) == want[k], (key, k)
        for k in ("answer_rate", "service_level"):
            assert (float(row[k]) if row[k] else None) == want[k], (key, k)


async def test_a_service_head_gets_their_service_first(
    client: Client, inbox: Inbox, smtp_url: str
) -> None:
    await ingest(client, weeks_of_calls())
    await sender(client, smtp_url, Clock(DUE)).weekly()
    mine = inbox.to(CHEF_EC)[0]
    assert mine["Subject"].startswith("Décroché — État civil, semaine 43")
    html = next(p for p in mine.walk() if p.get_content_type() == "text/html").get_content()
    assert html.index("Votre service") < html.index("Les services cette semaine")
    after = html[html.index("Votre service") :]
    assert after.index("État civil") < after.index("Accueil")
    table = html[html.index("Les services cette semaine") :]
    assert table.index("État civil") < table.index("Accueil")  # their row first, too
    # The global list's message starts with the services in configuration order.
    general = next(p for p in inbox.to(DGS)[0].walk() if p.get_content_type() == "text/html")
    body = general.get_content()
    assert "Votre service" not in body
    table = body[body.index("Les services cette semaine") :]
    assert table.index("Accueil") < table.index("État civil")


async def test_a_second_run_and_a_second_instance_send_nothing_more(
    client: Client, inbox: Inbox, smtp_url: str
) -> None:
    await ingest(client, weeks_of_calls())
    clock = Clock(DUE)
    a, b = sender(client, smtp_url, clock), sender(client, smtp_url, clock)
    first, second = await asyncio.gather(a.weekly(), b.weekly())
    assert sorted(o.recipient for o in first + second) == sorted([CHEF_EC, DGS, MAIRE])
    clock.now += timedelta(hours=2)
    assert await a.weekly() == []
    assert await b.deliver(WEEK, by_hand=True) == []
    assert len(inbox.messages) == 3


async def test_a_refusing_server_is_tried_again_with_back_off(
    client: Client, inbox: Inbox, smtp_url: str, db: asyncpg.Connection
) -> None:
    clock = Clock(DUE)
    metrics = client.app[METRICS]
    s = sender(client, smtp_url, clock, on_result=metrics.digest)
    inbox.refuse = True
    outcomes = await s.weekly()
    assert {o.result for o in outcomes} == {"retry"}
    assert len(outcomes) == 3
    rows = await db.fetch("SELECT * FROM digest_deliveries ORDER BY recipient")
    assert {r["state"] for r in rows} == {"pending"}
    assert {r["next_attempt_at"] for r in rows} == {DUE + backoff(1)}
    assert all("451" in r["last_error"] for r in rows)

    # Not before its time; then the server is back.
    clock.now = DUE + timedelta(seconds=30)
    assert await s.deliver() == []
    inbox.refuse = False
    clock.now = DUE + backoff(1)
    assert {o.result for o in await s.deliver()} == {"sent"}
    assert len(inbox.messages) == 3
    rows = await db.fetch("SELECT state, attempts, sent_at FROM digest_deliveries")
    assert {(r["state"], r["attempts"], r["sent_at"]) for r in rows} == {
        ("sent", 2, DUE + backoff(1))
    }
    resp = await client.get("/metrics")
    text = await resp.text()
    assert 'decroche_digest_messages_total{result="retry"} 3.0' in text
    assert 'decroche_digest_messages_total{result="sent"} 3.0' in text


async def test_a_server_down_for_good_is_given_up(
    client: Client, inbox: Inbox, smtp_url: str, db: asyncpg.Connection
) -> None:
    clock = Clock(DUE)
    s = sender(client, smtp_url, clock)
    inbox.refuse = True
    results = [o.result for o in await s.weekly()]
    for attempt in range(1, MAX_ATTEMPTS):
        clock.now += backoff(attempt)
        results += [o.result for o in await s.deliver()]
    assert results.count("retry") == 3 * (MAX_ATTEMPTS - 1)
    assert results.count("failed") == 3
    assert {r["state"] for r in await db.fetch("SELECT state FROM digest_deliveries")} == {"failed"}
    clock.now += timedelta(days=1)
    assert await s.deliver() == []
    assert inbox.messages == []


async def test_a_lost_answer_is_not_sent_again(
    client: Client, inbox: Inbox, smtp_url: str, db: asyncpg.Connection
) -> None:
    clock = Clock(DUE)
    s = sender(client, smtp_url, clock, timeout_s=0.5)
    inbox.hang_s = 1.0  # the server takes the message but answers too late
    outcomes = await s.weekly()
    assert {o.result for o in outcomes} == {"unknown"}
    await asyncio.sleep(1.5)
    inbox.hang_s = 0
    clock.now += timedelta(hours=3)
    assert await s.deliver() == []
    assert await s.weekly() == []
    states = {r["state"] for r in await db.fetch("SELECT state FROM digest_deliveries")}
    assert states == {"unknown"}


async def test_a_claim_its_process_never_finished_becomes_unknown(
    client: Client, inbox: Inbox, smtp_url: str, db: asyncpg.Connection
) -> None:
    pool = client.app[DB_POOL]
    metrics = client.app[METRICS]
    await q.enqueue(pool, str(WEEK), recipients(municipality()), DUE)
    # An instance claims the DGS's message, then dies before it says how it went.
    dead = await q.claim(pool, str(WEEK), DUE, "dead-instance", DUE)
    assert dead is not None
    assert dead["recipient"] == CHEF_EC  # the first in address order
    # A send by hand, even forced, leaves a fresh claim to its sender.
    assert await q.reopen(pool, str(WEEK), [CHEF_EC], ["sending"], DUE, DUE - STALE_CLAIM) == 0
    s = sender(client, smtp_url, Clock(DUE + timedelta(minutes=1)), on_result=metrics.digest)
    assert {o.recipient for o in await s.weekly()} == {DGS, MAIRE}
    state = await db.fetchval("SELECT state FROM digest_deliveries WHERE recipient = $1", CHEF_EC)
    assert state == "sending"  # not yet stale: it may still be on its way
    # Once stale it is said: unknown (it may have gone), never sent again by itself.
    s.clock = Clock(DUE + STALE_CLAIM + timedelta(minutes=1))
    assert await s.weekly() == []
    row = await db.fetchrow("SELECT * FROM digest_deliveries WHERE recipient = $1", CHEF_EC)
    assert row["state"] == "unknown"
    assert "dead-instance" in row["last_error"]
    assert inbox.to(CHEF_EC) == []
    text = await (await client.get("/metrics")).text()
    assert 'decroche_digest_messages_total{result="unknown"} 1.0' in text
    # The dead instance's late word no longer counts.
    assert not await q.finish(pool, str(WEEK), CHEF_EC, "sent", instance="dead-instance", at=DUE)
    assert (
        await db.fetchval("SELECT state FROM digest_deliveries WHERE recipient = $1", CHEF_EC)
        == "unknown"
    )


async def test_a_bug_while_building_a_message_is_capped_like_a_refusal(
    client: Client,
    inbox: Inbox,
    smtp_url: str,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock(DUE)
    s = sender(client, smtp_url, clock)

    def broken(*args: Any, **kw: Any) -> EmailMessage:
        raise ValueError("a header that cannot be written")

    monkeypatch.setattr("service.digest.delivery.build_message", broken)
    results = [o.result for o in await s.weekly()]
    for attempt in range(1, MAX_ATTEMPTS):
        clock.now += backoff(attempt)
        results += [o.result for o in await s.deliver()]
    assert results.count("retry") == 3 * (MAX_ATTEMPTS - 1)
    assert results.count("failed") == 3
    errors = {r["last_error"] for r in await db.fetch("SELECT last_error FROM digest_deliveries")}
    assert errors == {"ValueError('a header that cannot be written')"}
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("now", "sent"),
    [
        (DUE - timedelta(minutes=1), False),  # Monday 07:29: last week's is not due yet
        (DUE, True),
        (DUE + timedelta(hours=23, minutes=59), True),  # a leader back on Tuesday morning
        (DUE + timedelta(hours=24, minutes=1), False),  # too late: by hand only
    ],
)
async def test_a_digest_missed_while_down_is_caught_up_for_a_day(
    client: Client, inbox: Inbox, smtp_url: str, now: datetime, sent: bool
) -> None:
    outcomes = await sender(client, smtp_url, Clock(now)).weekly()
    assert bool(outcomes) is sent
    assert {o.week for o in outcomes} <= {str(WEEK)}


async def test_summer_time_moves_the_send_instant(
    client: Client, inbox: Inbox, smtp_url: str
) -> None:
    # Monday 19 October is still summer time: 07:30 in Paris is 05:30 UTC.
    summer = datetime(2026, 10, 19, 5, 30, tzinfo=UTC)
    assert await sender(client, smtp_url, Clock(summer - timedelta(seconds=1))).weekly() == []
    outcomes = await sender(client, smtp_url, Clock(summer)).weekly()
    assert {o.week for o in outcomes} == {str(WEEK.shift(-1))}


async def test_no_smtp_url_sends_nothing_and_records_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    s = DigestSender(client.app[DB_POOL], municipality(), Mailer(None, "x@y"), clock=Clock(DUE))
    assert await s.weekly() == []
    assert await db.fetchval("SELECT count(*) FROM digest_deliveries") == 0


async def test_the_service_schedules_the_weekly_job(client: Client) -> None:
    from service.keys import SCHEDULER

    scheduler = client.app[SCHEDULER]
    nxt = scheduler.next_run("digest.weekly")
    assert isinstance(nxt, datetime)
    local = nxt.astimezone(municipality().tz)
    assert (local.weekday(), local.hour, local.minute) == (0, 7, 30)
    assert scheduler.next_run("digest.retry") is not None
