"""Request ids and log lines that cannot be forged (issue 24, finding 7 and « request ids »).

Every answer carries ``X-Request-Id`` (the proxy's when sane, else a fresh one); every JSON
error carries the same id as ``request_id``; the log line of a 500 carries it, and the path
it logs cannot start a line of its own (``%0A``); the French 403 page shows « Référence ».
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from service.accounts import queries as accounts
from service.accounts.model import Role
from service.app import create_app
from service.keys import DB_POOL
from service.settings import Settings
from tests.conftest import ADMIN_HEADERS, ClientFactory

Client = TestClient[web.Request, web.Application]


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def buggy(db: Any, settings: Settings, aiohttp_client: ClientFactory) -> Client:
    """The service with one more route that fails as a bug would."""
    app = create_app(settings)
    app.router.add_get("/api/v1/boom/{rest:[\\s\\S]*}", _boom)
    return await aiohttp_client(app, headers=ADMIN_HEADERS)


async def _error_with_id(resp: Any) -> str:
    rid: str = resp.headers["X-Request-Id"]
    body = await resp.json()
    assert body["request_id"] == rid, body
    assert body["error"]
    return rid


async def test_every_answer_has_a_request_id(client: Client, anonymous: Any) -> None:
    ok = await client.get("/healthz")
    assert ok.status == 200
    assert len(ok.headers["X-Request-Id"]) >= 8
    assert "request_id" not in await ok.json()
    seen = {ok.headers["X-Request-Id"]}
    for resp in [
        await anonymous.get("/api/v1/me"),  # 401
        await client.get("/api/v1/nowhere"),  # 404 of the router
        await client.get("/api/v1/campaigns/424242"),  # a flow's 404 (campaigns' own errors)
        await client.delete("/api/v1/tokens/x"),  # the id parser's 404
        await client.get("/api/v1/calls?limit=0"),  # a parameter's 400, with its field
        await client.get(URL("/api/v1/me?a=%00", encoded=True)),  # NUL: refused first
        await client.post(
            "/api/v1/tokens",
            data=b"{" + b" " * 1_100_000,
            headers={"Content-Type": "application/json"},
        ),
    ]:
        assert resp.status >= 400
        seen.add(await _error_with_id(resp))
    redirect = await anonymous.get("/campagnes", allow_redirects=False)
    assert redirect.status == 303
    seen.add(redirect.headers["X-Request-Id"])
    assert len(seen) == 9  # one id per request


async def test_a_proxys_sane_id_is_kept_and_others_replaced(client: Client) -> None:
    sane = "5f0c8f0e-1b2a-4c3d-9e8f-0123456789ab"
    resp = await client.get("/api/v1/tokens/x", headers={"X-Request-Id": sane})
    assert resp.headers["X-Request-Id"] == sane
    assert (await resp.json())["request_id"] == sane
    for bad in ["short", "has spaces in it", "x" * 200, "<script>alert(1)</script>", "é" * 10]:
        resp = await client.get("/healthz", headers={"X-Request-Id": bad})
        assert resp.headers["X-Request-Id"] != bad
    from service.web.errors import new_request_id

    assert new_request_id({"X-Request-Id": "a\tb" * 5}) != "a\tb" * 5


async def test_a_500_is_logged_on_one_line_with_its_id(
    buggy: Client, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "/api/v1/boom/x%0A2026-11-16%2012:00:00%20INFO%20service.web.auth:%20admin%20in%0D"
    with caplog.at_level(logging.ERROR, logger="service.web.errors"):
        resp = await buggy.get(URL(forged, encoded=True))
    assert resp.status == 500
    rid = await _error_with_id(resp)
    assert "a bug" not in await resp.text()  # nothing of the failure reaches the client
    lines = [r for r in caplog.records if r.name == "service.web.errors"]
    assert len(lines) == 1
    message = lines[0].getMessage()
    assert rid in message
    assert "\n" not in message
    assert "\r" not in message
    assert "%0A2026-11-16" in message  # the path as received, still encoded
    assert lines[0].exc_info is not None  # the traceback is kept for the operator


def test_loggable_escapes_what_could_start_a_line() -> None:
    from service.web.errors import loggable

    for text in ["a\nb", "a\rb", "a\x00b", "a\x1b[31mb", "a\u2028b", "a\x85b"]:
        out = loggable(text)
        assert text not in out
        assert out.isprintable(), out
    assert loggable("x" * 1000).endswith("…")


async def test_the_french_403_page_shows_the_reference(client: Client, tmp_path: Path) -> None:
    pool = client.app[DB_POOL]
    uid = await accounts.add_user(pool, "lecture@ville.test", Role.VIEWER)
    _, token = await accounts.create_token(pool, "api", uid, "test")
    resp = await client.get("/synthese", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 403
    page = await resp.text()
    assert f"Référence : <code>{resp.headers['X-Request-Id']}</code>" in page


async def test_the_wall_stream_and_a_refused_login_carry_the_id(
    client: Client, anonymous: Any
) -> None:
    """The SSE stream starts before the middleware could add headers: it stamps its own; a
    login refused on the French page shows the reference the header carries."""
    async with client.get("/api/v1/wall/stream") as stream:
        assert stream.status == 200
        assert stream.headers["X-Request-Id"]
        assert stream.headers["X-Content-Type-Options"] == "nosniff"
    page = await anonymous.get("/connexion")
    html = await page.text()
    csrf = html.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    refused = await anonymous.post(
        "/connexion",
        data={"csrf": csrf, "email": "nobody@ville.test", "password": "wrong-password-1"},
        allow_redirects=False,
    )
    assert refused.status == 401
    rid = refused.headers["X-Request-Id"]
    assert f"Référence : <code>{rid}</code>" in await refused.text()
