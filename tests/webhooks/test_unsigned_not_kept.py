"""Signatures first, on every inbound route: nothing an unsigned request carries is kept.

Issue 24's attack: a forged ``X-Twilio-Signature`` with any bytes wrote a quarantine row
(300 × 61 KB in 0.9 s), because the body was parsed, and kept when it did not parse,
before its signature was checked. Twilio's guidance (« Webhooks Security »,
https://www.twilio.com/docs/usage/webhooks/webhooks-security) is to verify the
``X-Twilio-Signature`` — an HMAC of the URL and the POST parameters, keyed with the auth
token — before acting on a request. The rule now, for the Twilio routes (``/webhooks/twilio``
and the mystery-call callbacks) and the ``X-Decroche-Signature`` ones (Asterisk, CDR): no
secret configured → 503; missing or wrong signature → 403; a Twilio body that is not a
form, so whose signature cannot be checked → 400; none of them keeps anything. Only a
request whose signature checks out but that cannot be understood reaches quarantine.

The requests are signed (or forged) with Twilio's own library, ``RequestValidator``, through
real HTTP to the whole service on a real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import ClientFactory
from tests.support.twilio_client import TwilioPoster
from webhooks import signing

Client = TestClient[web.Request, web.Application]

TWILIO_PATHS = ["/webhooks/twilio", "/webhooks/twilio/mystery/1/answer"]
SIGNED_PATHS = ["/webhooks/asterisk", "/webhooks/cdr"]
GARBAGE = b"\xff\xfe not a form %%% {]"
NUL = b"CallSid=CA1\x00|1|q|NONE|\x00"  # a NUL byte cannot even be kept as text
BIG = b"\xfe" + b"A" * (61 * 1024)  # 61 KB, under the 64 KiB limit, not UTF-8
BIG_FORM = {"CallSid": "CA" + "1" * 32, "Junk": "x" * (61 * 1024)}  # a form, 61 KB
REPEAT = 40


async def kept(db: asyncpg.Connection) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM quarantine")
    return count


async def post_raw(client: Client, path: str, body: bytes, headers: dict[str, str]) -> int:
    resp = await client.post(
        path, data=body, headers={"Content-Type": "application/x-www-form-urlencoded", **headers}
    )
    await resp.read()
    return resp.status


@pytest.mark.parametrize("path", TWILIO_PATHS)
async def test_forged_twilio_signature_with_unparsable_bodies_keeps_nothing(
    client: Client, twilio: TwilioPoster, db: asyncpg.Connection, path: str
) -> None:
    """The attack: any bytes under a forged signature, once and then 61 KB at a time."""
    forged = {"X-Twilio-Signature": "Zm9yZ2VkLXNpZ25hdHVyZQ=="}
    assert await post_raw(client, path, GARBAGE, forged) == 400
    assert await post_raw(client, path, NUL, forged) == 403  # a form: its signature is wrong
    statuses = await asyncio.gather(*(post_raw(client, path, BIG, forged) for _ in range(REPEAT)))
    assert set(statuses) == {400}  # cannot be verified: refused, not kept
    # A well-formed 61 KB form under a signature made with another token: 403.
    other = TwilioPoster(client, "not-the-auth-token")
    assert (await other.post(BIG_FORM, path=path)).status == 403
    assert await kept(db) == 0
    assert await db.fetchval("SELECT count(*) FROM events") == 0


@pytest.mark.parametrize("path", TWILIO_PATHS)
async def test_missing_twilio_signature_keeps_nothing(
    client: Client, db: asyncpg.Connection, path: str
) -> None:
    assert await post_raw(client, path, GARBAGE, {}) == 403
    assert await post_raw(client, path, b"CallStatus=ringing", {}) == 403
    assert await kept(db) == 0


@pytest.mark.parametrize("path", TWILIO_PATHS)
async def test_without_auth_token_nothing_is_kept(
    db: asyncpg.Connection, settings: Settings, aiohttp_client: ClientFactory, path: str
) -> None:
    client = await aiohttp_client(create_app(settings.with_overrides(twilio_auth_token=None)))
    assert await post_raw(client, path, GARBAGE, {"X-Twilio-Signature": "x"}) == 503
    assert await kept(db) == 0


@pytest.mark.parametrize("path", TWILIO_PATHS)
async def test_signed_but_not_understood_still_goes_to_quarantine(
    twilio: TwilioPoster, db: asyncpg.Connection, path: str
) -> None:
    """Signed by Twilio's library with the right token, but no CallSid: kept, 400."""
    resp = await twilio.post({"CallStatus": "ringing", "Note": "=1+2"}, path=path)
    assert resp.status == 400
    row = await db.fetchrow("SELECT source, body FROM quarantine")
    assert row is not None
    assert row["source"] == ("twilio" if path == "/webhooks/twilio" else "twilio-mystery")
    assert "CallStatus=ringing" in row["body"]


@pytest.mark.parametrize("path", SIGNED_PATHS)
async def test_forged_decroche_signature_with_unparsable_bodies_keeps_nothing(
    client: Client, db: asyncpg.Connection, path: str
) -> None:
    now = int(time.time())
    wrong_key = {signing.HEADER: signing.sign("not-the-secret", GARBAGE, now)}
    assert await post_raw(client, path, GARBAGE, wrong_key) == 403
    nul_key = {signing.HEADER: signing.sign("not-the-secret", NUL, now)}
    assert await post_raw(client, path, NUL, nul_key) == 403
    assert await post_raw(client, path, GARBAGE, {}) == 403
    stale = {signing.HEADER: signing.sign("test-webhook-secret", GARBAGE, now - 3600)}
    assert await post_raw(client, path, GARBAGE, stale) == 403
    forged = {signing.HEADER: signing.sign("not-the-secret", BIG, now)}
    statuses = await asyncio.gather(*(post_raw(client, path, BIG, forged) for _ in range(REPEAT)))
    assert set(statuses) == {403}
    assert await kept(db) == 0


@pytest.mark.parametrize("path", SIGNED_PATHS)
async def test_without_webhook_secret_nothing_is_kept(
    db: asyncpg.Connection, settings: Settings, aiohttp_client: ClientFactory, path: str
) -> None:
    client = await aiohttp_client(create_app(settings.with_overrides(webhook_secret=None)))
    header = {signing.HEADER: signing.sign("test-webhook-secret", GARBAGE, int(time.time()))}
    assert await post_raw(client, path, GARBAGE, header) == 503
    assert await kept(db) == 0


@pytest.mark.parametrize("path", SIGNED_PATHS)
async def test_signed_garbage_still_goes_to_quarantine(
    client: Client, db: asyncpg.Connection, path: str
) -> None:
    header: dict[str, Any] = {
        signing.HEADER: signing.sign("test-webhook-secret", GARBAGE, int(time.time()))
    }
    assert await post_raw(client, path, GARBAGE, header) == 400
    assert await kept(db) == 1
