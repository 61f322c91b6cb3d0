"""A signed payload holding a NUL character (U+0000), which PostgreSQL's text and jsonb cannot
store: refused as malformed and kept in quarantine with the NUL as U+FFFD — never a 500
(issue 24's bad-input findings, found again by the signed-first tests)."""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import AUTH_TOKEN
from tests.support.twilio_client import TwilioPoster
from tests.webhooks.test_cdr import CALL, SECRET
from webhooks import signing


async def _signed(client: TestClient[Any, Any], path: str, body: bytes, kind: str) -> Any:
    header = signing.sign(SECRET, body, int(time.time()))
    return await client.post(
        path, data=body, headers={signing.HEADER: header, "Content-Type": kind}
    )


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/webhooks/cdr", json.dumps({**CALL, "agent": "a\u0000b"}).encode(), "application/json"),
        ("/webhooks/cdr", json.dumps({**CALL, "note\u0000": 1}).encode(), "application/json"),
        ("/webhooks/cdr", b'{"id": "1", "x": "\x00"}', "application/json"),
        ("/webhooks/asterisk", b"1700000000|c1|accueil|NONE|ENTERQUEUE|\x00|0612", "text/plain"),
    ],
)
async def test_signed_pbx_payloads_with_a_nul_are_refused_and_kept(
    db: asyncpg.Connection, client: TestClient[Any, Any], path: str, body: bytes, kind: str
) -> None:
    resp = await _signed(client, path, body, kind)
    assert resp.status in (200, 400), await resp.text()  # a batch answers 200 with refusals
    text = await resp.text()
    assert "NUL" in text or "not JSON" in text
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    kept = await db.fetch("SELECT body, reason FROM quarantine")
    assert len(kept) == 1
    # As received, but for a raw NUL byte, which is kept as U+FFFD (JSON's escaped « \u0000 »
    # is six characters of text, stored as they came).
    assert kept[0]["body"] == body.decode().replace("\x00", "\ufffd")


async def test_a_signed_twilio_callback_with_a_nul_is_refused_and_kept(
    db: asyncpg.Connection, client: TestClient[Any, Any]
) -> None:
    poster = TwilioPoster(client, AUTH_TOKEN)
    resp = await poster.post(
        {"CallSid": "CA" + "1" * 32, "CallStatus": "ringing", "From": "+33612\x0034567"}
    )
    assert resp.status == 400, await resp.text()
    assert "NUL" in await resp.text()
    assert await db.fetchval("SELECT count(*) FROM events") == 0
    body = await db.fetchval("SELECT body FROM quarantine")
    assert body is not None
    assert "\x00" not in body
