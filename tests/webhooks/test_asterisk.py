"""Asterisk queue_log: the adapter, file imports (resumable, idempotent, followed across
rotation) and the signed webhook."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from service.calls.model import Disposition, Kind
from service.calls.partitions import Partitions
from service.calls.queries import append_events
from service.cli.imports import import_asterisk
from service.keys import DB_POOL, SETTINGS
from service.metrics.report import engagement8
from service.municipality.model import load_municipality
from service.privacy import Pseudonymiser
from tests.conftest import TEST_CONFIG
from tests.support.paths import DATA
from webhooks import asterisk, signing
from webhooks.errors import Malformed

M = load_municipality(TEST_CONFIG)
PARIS = ZoneInfo("Europe/Paris")
FREEPBX = DATA / "queue_log_freepbx"
DAY = date(2026, 11, 19)
SECRET = "test-webhook-secret"
PSEUDO = Pseudonymiser("test-secret-key")
NOW = datetime(2026, 11, 19, 12, tzinfo=UTC)


def event(text: str) -> Any:
    return asterisk.to_event(asterisk.parse_line(text), NOW)


# --- the adapter --------------------------------------------------------------------------


def test_each_event_kind_means_what_the_spec_says() -> None:
    t = "1795594300"
    enter = event(f"{t}|c1|accueil|NONE|ENTERQUEUE||0612345678|1")
    assert (enter.kind, enter.queue, enter.caller, enter.direction) == (
        Kind.STARTED,
        "accueil",
        "0612345678",
        "inbound",
    )
    assert enter.at == datetime.fromtimestamp(int(t), UTC)
    connect = event(f"{t}|c1|accueil|PJSIP/201|CONNECT|18|c1b|3")
    assert (connect.kind, connect.wait_s, connect.agent) == (Kind.AGENT_ANSWERED, 18, "PJSIP/201")
    abandon = event(f"{t}|c1|accueil|NONE|ABANDON|2|1|42")
    assert (abandon.kind, abandon.status, abandon.wait_s) == (Kind.ENDED, "abandoned", 42)
    for name, args, wait in (
        ("EXITWITHTIMEOUT", "1|1|60", 60),
        ("EXITEMPTY", "1|1|12", 12),
        ("EXITWITHKEY", "1|1|1|50", 50),  # the wait is the last argument here
    ):
        ev = event(f"{t}|c1|accueil|NONE|{name}|{args}")
        assert (ev.kind, ev.wait_s) == (Kind.ENDED, wait), name
        assert not ev.answered
    for name, args in (
        ("COMPLETECALLER", "18|240|1"),
        ("COMPLETEAGENT", "18|240|1"),
        ("BLINDTRANSFER", "3001|from-internal|18|240|1"),
        ("ATTENDEDTRANSFER", "BRIDGE|x.1|18|240|1"),
        ("TRANSFER", "3001|from-internal|18|240|1"),  # Asterisk 1.4's spelling
    ):
        ev = event(f"{t}|c1|accueil|PJSIP/201|{name}|{args}")
        assert (ev.kind, ev.answered, ev.wait_s, ev.duration_s) == (Kind.ENDED, True, 18, 240)
        assert ev.status == Disposition.ANSWERED.value
    did = event(f"{t}|c1|NONE|NONE|DID|+33100000001")
    assert (did.kind, did.line, did.queue) == (Kind.STARTED, "+33100000001", None)
    # Refused at the door (Wazo): the call ends unanswered there.
    assert event(f"{t}|c1|accueil|NONE|FULL").status == Disposition.BUSY.value
    assert event(f"{t}|c1|accueil|NONE|JOINEMPTY").kind is Kind.ENDED
    # Used for nothing, kept without harm.
    assert event(f"{t}|c1|accueil|NONE|MYCUSTOMEVENT|x").kind is Kind.OTHER
    member = event(f"{t}|NONE|accueil|PJSIP/201|PAUSE|Pause café")
    assert member.kind is Kind.OTHER
    assert member.call_key.startswith("noncall:")


def test_the_database_variant_reads_the_same() -> None:
    # Wazo's queue_log table: time with microseconds, local time without an offset.
    row = {
        "time": "2026-11-19 10:05:18.896208",
        "callid": "c1",
        "queuename": "accueil",
        "agent": "PJSIP/201",
        "event": "CONNECT",
        "data1": "18",
        "data2": "c1b",
        "data3": "3",
        "data4": "",
        "data5": "",
    }
    ev = asterisk.to_event(asterisk.parse_row(row, PARIS), NOW)
    assert ev.at == datetime(2026, 11, 19, 9, 5, 18, 896208, tzinfo=UTC)
    assert (ev.kind, ev.wait_s) == (Kind.AGENT_ANSWERED, 18)
    # One ``data`` column, and a summer time: the offset follows the date.
    summer = {**row, "time": "2026-07-01 10:05:18", "data": "18|c1b|3"}
    for k in ("data1", "data2", "data3", "data4", "data5"):
        del summer[k]
    ev = asterisk.to_event(asterisk.parse_row(summer, PARIS), NOW)
    assert ev.at == datetime(2026, 7, 1, 8, 5, 18, tzinfo=UTC)
    assert ev.wait_s == 18
    # A time with its offset is taken as it says.
    ev = asterisk.to_event(
        asterisk.parse_row({**row, "time": "2026-11-19 09:05:18+00"}, PARIS), NOW
    )
    assert ev.at == datetime(2026, 11, 19, 9, 5, 18, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1795594300|c1|accueil|NONE", "at least 5 fields"),
        ("notatime|c1|accueil|NONE|ENTERQUEUE||0611|1", "not a Unix time"),
        ("99|c1|accueil|NONE|ENTERQUEUE||0611|1", "out of range"),
        ("1795594300|c1|accueil|NONE|enterqueue||0611|1", "not a queue_log event name"),
        (
            "1795594300|c1|accueil|PJSIP/1|CONNECT|abc|x|1",
            r"hold time \(argument 1\) is not a number",
        ),
        ("1795594300|c1|accueil|NONE|ABANDON|1|1|-4", "out of range"),
    ],
)
def test_malformed_lines_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(Malformed, match=words):
        event(text)


def test_a_line_read_twice_is_the_same_delivery() -> None:
    a = event("1795594300|c1|accueil|NONE|ENTERQUEUE||0612345678|1")
    b = event("1795594300|c1|accueil|NONE|ENTERQUEUE||0612345678|1\r\n")
    c = event("1795594301|c1|accueil|NONE|ENTERQUEUE||0612345678|1")
    assert a.dedup_key == b.dedup_key != c.dedup_key


# --- a FreePBX day, imported ----------------------------------------------------------------


async def calls_by_caller(db: asyncpg.Connection) -> dict[str, asyncpg.Record]:
    rows = await db.fetch("SELECT * FROM calls")
    return {r["caller_last2"]: r for r in rows}


async def test_a_freepbx_day_imports_with_every_event_kind(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pool = client.app[DB_POOL]
    report = await import_asterisk(pool, FREEPBX, PARIS, PSEUDO)
    assert report.refused == 4
    assert report.resumed_from is None
    quarantined = await db.fetch(
        "SELECT line_no, reason, body FROM quarantine WHERE source = 'asterisk' ORDER BY line_no"
    )
    assert [q["line_no"] for q in quarantined] == [21, 33, 44, 51]
    assert "line 44: CONNECT: hold time (argument 1) is not a number" in quarantined[2]["reason"]
    assert quarantined[1]["body"].startswith("notatime|")

    calls = await calls_by_caller(db)
    assert set(calls) == {f"{n:02d}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)}
    c1 = calls["01"]
    assert (c1["answered"], c1["wait_s"], c1["agent"], c1["line"]) == (
        True,
        18,
        "PJSIP/201",
        "+33100000001",
    )
    assert c1["ended_at"] - c1["started_at"] == (c1["answered_at"] - c1["started_at"]) + (
        c1["ended_at"] - c1["answered_at"]
    )
    assert (c1["ended_at"] - c1["answered_at"]).total_seconds() == 240
    assert (calls["02"]["answered"], calls["02"]["wait_s"], calls["02"]["disposition"]) == (
        False,
        42,
        "abandoned",
    )
    assert calls["04"]["disposition"] == "no_answer"
    assert [calls[n]["answered"] for n in ("05", "06", "07")] == [True, True, True]
    assert calls["08"]["wait_s"] == 50
    assert calls["12"]["disposition"] is None  # still waiting: shown on the wall
    assert calls["10"]["line"] is None  # an unmapped queue without a line: « ligne inconnue »

    figures = await engagement8(pool, M, DAY, DAY)
    accueil = next(s for s in figures["services"] if s["service"] == "accueil")
    assert {k: accueil[k] for k in ("received", "out_of_hours", "short_abandoned", "offered")} == {
        "received": 10,
        "out_of_hours": 1,
        "short_abandoned": 1,
        "offered": 8,
    }
    assert (accueil["answered"], accueil["lost"], accueil["answer_rate"]) == (4, 4, 0.5)
    assert accueil["service_level"] == 3 / 8
    assert accueil["asa_s"] == (18 + 7 + 12 + 30) / 4
    assert accueil["max_wait_s"] == 60
    civil = next(s for s in figures["services"] if s["service"] == "etat-civil")
    assert civil["answered"] == 1  # the unmapped queue, dialled on État civil's line
    unknown = next(s for s in figures["services"] if s["service"] is None)
    assert unknown["received"] == 1

    # A second import of the same file changes nothing, whether it resumes or rereads.
    before = [dict(r) for r in await db.fetch("SELECT * FROM calls ORDER BY id")]
    again = await import_asterisk(pool, FREEPBX, PARIS, PSEUDO)
    assert (again.resumed_from, again.lines, again.new) == (51, 0, 0)
    await db.execute("DELETE FROM import_files")
    reread = await import_asterisk(pool, FREEPBX, PARIS, PSEUDO)
    assert (reread.lines, reread.new, reread.refused) == (50, 0, 4)
    after = [dict(r) for r in await db.fetch("SELECT * FROM calls ORDER BY id")]
    for row in before + after:
        row.pop("updated_at")
    assert after == before


async def test_an_interrupted_import_resumes_where_it_stopped(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pool = client.app[DB_POOL]
    lines = FREEPBX.read_bytes().splitlines(keepends=True)
    log = tmp_path / "queue_log"
    log.write_bytes(b"".join(lines[:25]))  # the import stopped here (the file was shorter)
    first = await import_asterisk(pool, log, PARIS, PSEUDO, batch_size=7)
    assert first.lines == 25
    log.write_bytes(b"".join(lines))
    second = await import_asterisk(pool, log, PARIS, PSEUDO)
    assert second.resumed_from == 25
    assert second.lines == len(lines) - 25 - 1  # the blank line is not a line to read
    resumed = {r["caller_last2"]: dict(r) for r in await db.fetch("SELECT * FROM calls")}

    await db.execute("TRUNCATE events, calls, fold_queue, quarantine, import_files")
    await import_asterisk(pool, FREEPBX, PARIS, PSEUDO)
    whole = {r["caller_last2"]: dict(r) for r in await db.fetch("SELECT * FROM calls")}
    strip = ("id", "updated_at")
    assert {k: {c: v for c, v in r.items() if c not in strip} for k, r in resumed.items()} == {
        k: {c: v for c, v in r.items() if c not in strip} for k, r in whole.items()
    }


async def test_follow_reads_a_live_log_across_rotation_and_truncation(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pool = client.app[DB_POOL]
    log = tmp_path / "queue_log"
    log.write_text("")
    stop = asyncio.Event()
    task = asyncio.create_task(
        import_asterisk(pool, log, PARIS, PSEUDO, follow=True, stop=stop, poll_s=0.05)
    )

    async def count_calls(n: int) -> None:
        for _ in range(200):
            if await db.fetchval("SELECT count(*) FROM calls") >= n:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"expected {n} calls, found {await db.fetchval('SELECT count(*) FROM calls')}"
        )

    t = 1795594300

    def call(callid: str, caller: str, start: int) -> str:
        return (
            f"{start}|{callid}|accueil|NONE|ENTERQUEUE||{caller}|1\n"
            f"{start + 20}|{callid}|accueil|NONE|ABANDON|1|1|20\n"
        )

    with log.open("a") as f:  # Asterisk appends; a line may arrive in two writes
        f.write(call("a.1", "0611000001", t))
        f.write(f"{t + 30}|a.2|accueil|NONE|ENTER")
        f.flush()
        await count_calls(1)
        f.write(f"QUEUE||0611000002|1\n{t + 40}|a.2|accueil|NONE|ABANDON|1|1|10\n")
    await count_calls(2)
    # logrotate: the file is renamed and Asterisk starts a new one.
    log.rename(tmp_path / "queue_log.1")
    log.write_text(call("b.1", "0611000003", t + 100))
    await count_calls(3)
    # copytruncate: the same file emptied in place, then written again.
    with log.open("r+") as f:
        f.truncate(0)
    log.write_text(call("c.1", "0611000004", t + 200))
    await count_calls(4)
    stop.set()
    report = await task
    assert report.rotations == 2
    assert report.refused == 0
    a2 = await db.fetchrow("SELECT wait_s FROM calls WHERE caller_last2 = '02'")
    assert a2["wait_s"] == 10  # the line written in two parts was read once, whole


# --- the webhook ----------------------------------------------------------------------------


async def post_lines(
    client: TestClient[Any, Any], text: str, *, t: int | None = None, secret: str = SECRET
) -> Any:
    body = text.encode()
    header = signing.sign(secret, body, int(time.time()) if t is None else t)
    return await client.post(
        "/webhooks/asterisk",
        data=body,
        headers={signing.HEADER: header, "Content-Type": "text/plain"},
    )


async def test_lines_pushed_over_http(db: asyncpg.Connection, client: TestClient[Any, Any]) -> None:
    text = FREEPBX.read_text()
    resp = await post_lines(client, text)
    assert resp.status == 200
    answer = await resp.json()
    assert answer["accepted"] == 46
    assert [r["line"] for r in answer["refused"]] == [21, 33, 44, 51]
    assert await db.fetchval("SELECT count(*) FROM quarantine WHERE line_no = 44") == 1
    # Sent again (a retry): nothing changes.
    again = await (await post_lines(client, text)).json()
    assert (again["accepted"], again["duplicates"]) == (0, 46)
    assert await db.fetchval("SELECT count(*) FROM events") == 46


async def test_forged_replayed_or_unsigned_pushes_are_refused(
    db: asyncpg.Connection, client: TestClient[Any, Any]
) -> None:
    line = "1795594300|c1|accueil|NONE|ENTERQUEUE||0612345678|1\n"
    forged = await post_lines(client, line, secret="not-the-secret")
    assert forged.status == 403
    assert "does not match" in (await forged.json())["error"]
    replayed = await post_lines(client, line, t=int(time.time()) - 600)
    assert replayed.status == 403
    assert "away from this server's clock" in (await replayed.json())["error"]
    unsigned = await client.post("/webhooks/asterisk", data=line.encode())
    assert unsigned.status == 403
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 0
    # A body changed after signing.
    body = line.encode()
    header = signing.sign(SECRET, body, int(time.time()))
    tampered = await client.post(
        "/webhooks/asterisk", data=body.replace(b"0612", b"0699"), headers={signing.HEADER: header}
    )
    assert tampered.status == 403


async def test_without_a_secret_the_push_is_refused(
    db: asyncpg.Connection, settings: Any, aiohttp_client: Any
) -> None:
    from service.app import create_app

    client = await aiohttp_client(create_app(settings.with_overrides(webhook_secret=None)))
    resp = await post_lines(client, "1795594300|c1|accueil|NONE|ENTERQUEUE||0612345678|1\n")
    assert resp.status == 503
    assert "DECROCHE_WEBHOOK_SECRET" in (await resp.json())["error"]


def test_the_file_in_the_tests_is_a_real_queue_log() -> None:
    # Every call line of the fixture parses or is one of the four deliberate mistakes.
    bad = 0
    for text in FREEPBX.read_text().splitlines():
        if not text.strip():
            continue
        try:
            event(text)
        except Malformed:
            bad += 1
    assert bad == 4


async def test_the_table_export_is_the_same_log(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """The database variant (local times with microseconds, data1..data5), exported as CSV,
    holds the same deliveries as the file: importing both stores each line once."""
    pool = client.app[DB_POOL]
    await import_asterisk(pool, FREEPBX, PARIS, PSEUDO)
    before = await db.fetchval("SELECT count(*) FROM events")
    export = tmp_path / "queue_log.csv"
    rows = ["time,callid,queuename,agent,event,data1,data2,data3,data4,data5"]
    for text in FREEPBX.read_text().splitlines():
        try:
            event(text)  # only the lines the file import accepted
        except Malformed:
            continue
        line = asterisk.parse_line(text)
        local = line.at.astimezone(PARIS).replace(tzinfo=None)
        data = [*line.args, "", "", "", "", ""][:5]
        fields = [f"{local:%Y-%m-%d %H:%M:%S}.000000", line.callid, line.queue, line.agent]
        rows.append(",".join(f'"{v}"' for v in [*fields, line.event, *data]))
    export.write_text("\n".join(rows) + "\n")
    report = await import_asterisk(pool, export, PARIS, PSEUDO)
    assert (report.lines, report.new, report.refused) == (46, 0, 0), report.reasons
    assert report.duplicates == 46
    assert await db.fetchval("SELECT count(*) FROM events") == before


async def test_small_batches_fold_every_call_as_one_batch_does(
    db: asyncpg.Connection,
    client: TestClient[Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Storing and folding overlap, and calls whose lines are far apart are read back: in
    batches of 37 lines (calls spread over many batches), the calls come out the same."""
    from service.demo.pbx import queue_log
    from service.demo.traffic import TrafficGenerator

    pool = client.app[DB_POOL]
    gen = TrafficGenerator(M, seed=4)
    calls = gen.day(DAY) + gen.day(date(2026, 11, 20))
    log = tmp_path / "queue_log"
    log.write_text("".join(line + "\n" for line in queue_log(calls, M, seed=2)))

    async def imported(batch_size: int) -> dict[str, tuple[Any, ...]]:
        await db.execute("TRUNCATE events, calls, fold_queue, import_files")
        report = await import_asterisk(pool, log, PARIS, PSEUDO, batch_size=batch_size)
        assert report.refused == 0
        assert await db.fetchval("SELECT count(*) FROM fold_queue") == 0
        rows = await db.fetch(
            "SELECT external_id, started_at, answered, wait_s, ended_at, disposition FROM calls"
        )
        return {r["external_id"]: tuple(r.values()) for r in rows}

    whole = await imported(5000)
    assert len(whole) == len(calls)
    # Folded a few calls at a time too, so storing goes on between two folds.
    monkeypatch.setattr("service.calls.bulk.BulkWriter.FOLD_BATCH", 7)
    assert await imported(37) == whole


@pytest.mark.parametrize("refusals", [True, False], ids=["with-refused-lines", "clean"])
async def test_a_line_stored_meanwhile_by_another_writer_is_kept_once(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path, refusals: bool
) -> None:
    """An import checks what is stored before inserting (cheaper than ON CONFLICT); a line
    stored by another transaction at that moment fails the statement, which is retried the
    slow way: nothing lost, nothing doubled. With refused lines in the batch the retry runs
    inside the quarantine's transaction (a savepoint); without, on its own."""
    pool = client.app[DB_POOL]
    lines = FREEPBX.read_text().splitlines()
    if not refusals:
        lines = [x for x in lines if _parses(x)]
    log = tmp_path / "queue_log"
    log.write_text("".join(x + "\n" for x in lines))
    shared = next(x for x in lines if "|CONNECT|" in x)

    other = await asyncpg.connect(client.app[SETTINGS].database_url)
    try:
        writing = other.transaction()
        await writing.start()
        await append_events(other, [(event(shared), {"line": shared})], Partitions())
        importing = asyncio.create_task(import_asterisk(pool, log, PARIS, PSEUDO))
        await asyncio.sleep(0.5)
        assert not importing.done()  # waiting for the other writer's insert
        await writing.commit()
        report = await asyncio.wait_for(importing, 10)
    finally:
        await other.close()

    valid = sum(1 for x in lines if _parses(x))
    assert (report.new, report.duplicates) == (valid - 1, 1)
    assert await db.fetchval("SELECT count(*) FROM events") == valid
    key = event(shared).dedup_key
    assert await db.fetchval("SELECT count(*) FROM events WHERE dedup_key = $1", key) == 1
    assert await db.fetchval("SELECT count(*) FROM fold_queue") == 0
    assert await db.fetchval("SELECT count(*) FROM quarantine") == (4 if refusals else 0)


async def test_a_line_repeated_in_the_file_is_stored_once(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    lines = [x for x in FREEPBX.read_text().splitlines() if _parses(x)]
    log = tmp_path / "queue_log"
    # The 5th line again, next to itself (same batch) and at the end (a later batch).
    log.write_text("".join(x + "\n" for x in [*lines[:5], lines[4], *lines[5:], lines[4]]))
    report = await import_asterisk(client.app[DB_POOL], log, PARIS, PSEUDO, batch_size=20)
    assert (report.lines, report.new, report.duplicates) == (len(lines) + 2, len(lines), 2)
    assert await db.fetchval("SELECT count(*) FROM events") == len(lines)


async def test_a_batch_of_refused_lines_still_moves_the_position_on(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """A batch with no valid line (all refused, or blank) is stored as far as the file
    position goes: a second run does not read (nor quarantine) those lines again."""
    log = tmp_path / "queue_log"
    good = [x for x in FREEPBX.read_text().splitlines() if _parses(x)]
    log.write_text("".join(x + "\n" for x in [*good[:3], "garbage", "", "more|garbage"]))
    pool = client.app[DB_POOL]
    first = await import_asterisk(pool, log, PARIS, PSEUDO, batch_size=3)
    assert (first.new, first.refused) == (3, 2)
    again = await import_asterisk(pool, log, PARIS, PSEUDO, batch_size=3)
    assert (again.lines, again.refused, again.resumed_from) == (0, 0, 6)
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 2


def _parses(text: str) -> bool:
    try:
        event(text)
    except Malformed:
        return False
    return True


def test_local_times_on_the_dst_days() -> None:
    """A PBX writing local times without an offset: on the spring day 02:30 does not exist
    and is read as 03:30; on the autumn day 02:30 happens twice and the first is taken
    (the table cannot say which; the file's Unix times can)."""
    base = {"callid": "c1", "queuename": "accueil", "agent": "NONE", "event": "ENTERQUEUE"}
    spring = asterisk.parse_row({**base, "time": "2026-03-29 02:30:00"}, PARIS)
    assert spring.at == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    autumn = asterisk.parse_row({**base, "time": "2026-10-25 02:30:00"}, PARIS)
    assert autumn.at == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    before = asterisk.parse_row({**base, "time": "2026-10-25 01:59:59"}, PARIS)
    assert (autumn.at - before.at).total_seconds() == 30 * 60 + 1
