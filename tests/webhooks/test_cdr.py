"""Generic CDRs: the signed webhook (batches, per-row refusals, updates by id, replays) and
``decroche import csv``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from service.cli.imports import import_cdr_csv
from service.keys import DB_POOL, FOLDER
from service.privacy import Pseudonymiser
from tests.webhooks.test_asterisk import PARIS
from webhooks import signing

SECRET = "test-webhook-secret"
PSEUDO = Pseudonymiser("test-secret-key")

CALL = {
    "id": "pbx-4711",
    "line": "+33100000002",
    "caller": "+33612345678",
    "started_at": "2026-11-16T08:31:02+01:00",
    "offered_at": None,
    "answered_at": "2026-11-16T08:31:20+01:00",
    "ended_at": "2026-11-16T08:35:40+01:00",
    "agent": "poste-12",
    "queue": None,
    "direction": "inbound",
}


async def post(
    client: TestClient[Any, Any], payload: Any, *, t: int | None = None, fold: bool = True
) -> Any:
    """Signed as a PBX's export script signs; returns once the calls are folded."""
    body = json.dumps(payload).encode()
    header = signing.sign(SECRET, body, int(time.time()) if t is None else t)
    resp = await client.post(
        "/webhooks/cdr",
        data=body,
        headers={signing.HEADER: header, "Content-Type": "application/json"},
    )
    if fold:
        await client.app[FOLDER].catch_up()
    return resp


async def test_one_call_stored_then_updated_by_its_id(
    db: asyncpg.Connection, client: TestClient[Any, Any]
) -> None:
    resp = await post(client, CALL)
    assert resp.status == 200
    assert await resp.json() == {"accepted": 1, "duplicates": 0, "refused": []}
    row = await db.fetchrow("SELECT * FROM calls")
    assert (row["answered"], row["wait_s"], row["agent"], row["caller_last2"]) == (
        True,
        18,
        "poste-12",
        "78",
    )
    # The same record again: a duplicate, nothing changes.
    assert (await (await post(client, CALL)).json())["duplicates"] == 1
    # Corrected by the PBX (the answer was a voicemail): the call is updated, not doubled.
    fixed = {**CALL, "answered_at": None, "agent": None}
    assert (await (await post(client, fixed)).json())["accepted"] == 1
    rows = await db.fetch("SELECT * FROM calls")
    assert len(rows) == 1
    assert (rows[0]["answered"], rows[0]["wait_s"], rows[0]["disposition"]) == (
        False,
        278,
        "abandoned",
    )
    # The wait counts from the offer when the record gives one (after an IVR menu).
    offered = {**CALL, "id": "pbx-4712", "offered_at": "2026-11-16T08:31:10+01:00"}
    await post(client, offered)
    assert await db.fetchval("SELECT wait_s FROM calls WHERE external_id = 'pbx-4712'") == 10


async def test_a_batch_keeps_the_good_rows_and_says_which_are_refused(
    db: asyncpg.Connection, client: TestClient[Any, Any]
) -> None:
    rows = [
        CALL,
        {**CALL, "id": "pbx-2"},
        {**CALL, "id": "pbx-3", "started_at": None},
        {**CALL, "id": "pbx-4", "answered_at": "2026-11-16T08:30:00+01:00"},
        {**CALL, "id": "pbx-5", "direction": "sideways"},
        "not an object",
        {**CALL, "id": "pbx-6", "started_at": "16/11/2026 08:31"},
        CALL,  # repeated in the same batch
        {**CALL, "id": "pbx-7", "started_at": "2026-11-16T08:31:02"},  # local time
    ]
    resp = await post(client, {"calls": rows})
    assert resp.status == 200
    answer = await resp.json()
    assert (answer["accepted"], answer["duplicates"]) == (3, 1)
    refused = {r["index"]: r for r in answer["refused"]}
    assert sorted(refused) == [2, 3, 4, 5, 6]
    assert refused[2]["reason"] == "started_at is required"
    assert refused[2]["id"] == "pbx-3"
    assert refused[3]["reason"] == "answered_at is before started_at"
    assert "direction" in refused[4]["reason"]
    assert "object" in refused[5]["reason"]
    assert "ISO 8601" in refused[6]["reason"]
    kept = await db.fetch("SELECT reason, body FROM quarantine WHERE source = 'cdr' ORDER BY id")
    assert [k["reason"].split(":")[0] for k in kept] == [f"calls[{i}]" for i in (2, 3, 4, 5, 6)]
    assert json.loads(kept[0]["body"])["id"] == "pbx-3"
    ids = {r["external_id"]: r for r in await db.fetch("SELECT * FROM calls")}
    assert set(ids) == {"pbx-4711", "pbx-2", "pbx-7"}
    assert ids["pbx-7"]["started_at"] == ids["pbx-4711"]["started_at"]  # Paris time in November


async def test_bad_bodies_and_signatures(
    db: asyncpg.Connection, client: TestClient[Any, Any]
) -> None:
    # One invalid record alone: 400, kept in quarantine.
    resp = await post(client, {**CALL, "ended_at": "2026-11-16T08:00:00+01:00"})
    assert resp.status == 400
    assert "ended_at is before" in (await resp.json())["error"]
    body = b"{not json"
    header = signing.sign(SECRET, body, int(time.time()))
    resp = await client.post("/webhooks/cdr", data=body, headers={signing.HEADER: header})
    assert resp.status == 400
    assert "not JSON" in (await resp.json())["error"]
    assert (await post(client, {"calls": []})).status == 400
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 3
    # Forged, replayed: refused, nothing kept.
    forged = json.dumps(CALL).encode()
    bad = signing.sign("guess", forged, int(time.time()))
    assert (
        await client.post("/webhooks/cdr", data=forged, headers={signing.HEADER: bad})
    ).status == 403
    replay = await post(client, CALL, t=int(time.time()) - 301)
    assert replay.status == 403
    future = await post(client, CALL, t=int(time.time()) + 3600)
    assert future.status == 403
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 3


async def test_csv_import_with_good_bad_and_repeated_rows(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    pool = client.app[DB_POOL]
    path = tmp_path / "export.csv"
    # As a French spreadsheet saves it: semicolons, a BOM, an extra column.
    path.write_text(
        "\ufeffid;line;caller;started_at;offered_at;answered_at;ended_at;agent;queue;direction;note\n"
        "a1;+33100000001;0612345678;2026-11-16 08:31:02;;2026-11-16 08:31:20;"
        "2026-11-16 08:35:40;poste-12;;inbound;ok\n"
        "a2;+33100000001;0612345679;2026-11-16 08:40:00;;;2026-11-16 08:41:00;;;;\n"
        "a3;+33100000001;0612345670;hier;;;;;;;\n"
        "a1;+33100000001;0612345678;2026-11-16 08:31:02;;2026-11-16 08:31:20;"
        "2026-11-16 08:35:40;poste-12;;inbound;repeated\n",
        encoding="utf-8",
    )
    report = await import_cdr_csv(pool, path, PARIS, PSEUDO)
    assert (report.lines, report.new, report.duplicates, report.refused) == (4, 2, 1, 1)
    assert report.reasons == [
        "export.csv line 4: started_at is not an ISO 8601 date and time "
        "(e.g. 2026-11-16T08:31:02+01:00): 'hier'"
    ]
    assert await db.fetchval("SELECT line_no FROM quarantine") == 4
    calls = {r["external_id"]: r for r in await db.fetch("SELECT * FROM calls")}
    assert (calls["a1"]["wait_s"], calls["a2"]["wait_s"], calls["a2"]["answered"]) == (
        18,
        60,
        False,
    )
    again = await import_cdr_csv(pool, path, PARIS, PSEUDO)
    assert (again.new, again.duplicates) == (0, 3)


async def test_a_csv_without_the_needed_columns_is_refused_whole(
    db: asyncpg.Connection, client: TestClient[Any, Any], tmp_path: Path
) -> None:
    import pytest

    from webhooks.files import UnreadableFile

    path = tmp_path / "wrong.csv"
    path.write_text("call,start\n1,2026-11-16 08:00\n")
    with pytest.raises(UnreadableFile, match="no column id, started_at"):
        await import_cdr_csv(client.app[DB_POOL], path, PARIS, PSEUDO)


async def test_a_database_outage_is_a_503_and_the_retry_lands_once(
    db: asyncpg.Connection, database: Any, tmp_path: Path, aiohttp_client: Any
) -> None:
    from service.app import create_app
    from tests.conftest import make_settings
    from tests.support.tcp_proxy import DatabaseProxy

    proxy = DatabaseProxy(database.dsn)
    await proxy.start()
    client = await aiohttp_client(create_app(make_settings(proxy.dsn, tmp_path)))
    await proxy.cut()
    batch = {"calls": [CALL, {**CALL, "id": "pbx-2"}, {**CALL, "id": "bad", "started_at": None}]}
    down = await post(client, batch, fold=False)
    assert down.status == 503  # nothing said stored, the refused row not kept either: retry
    lines = "1795594300|c1|accueil|NONE|ENTERQUEUE||0612345678|1\n"
    body = lines.encode()
    header = signing.sign(SECRET, body, int(time.time()))
    pushed = await client.post("/webhooks/asterisk", data=body, headers={signing.HEADER: header})
    assert pushed.status == 503
    await proxy.restore()
    again = await post(client, batch)
    assert again.status == 200
    assert (await again.json())["accepted"] == 2
    assert await db.fetchval("SELECT count(*) FROM calls WHERE source = 'cdr'") == 2
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 1
