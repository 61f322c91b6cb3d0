"""Bad input through real HTTP never makes a 5xx: every route that takes an id, a date, a
week, a limit, a query string or a JSON body answers a 4xx JSON error that says what is
wrong (issue 24, finding 6: Unicode digits, ids past bigint, calendar edges, NUL bytes)."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.support.twilio_client import TwilioPoster

Client = TestClient[web.Request, web.Application]

# Superscript two, Arabic-Indic digits, fullwidth digits: str.isdigit() says yes, int()
# or PostgreSQL says no. Then past bigint, negative, not whole, padded.
BAD_IDS = [
    "²",
    "١٢",
    "１２",
    "99999999999999999999",
    "9223372036854775808",
    "00000000000000000000001",
    "-1",
    "1.0",
    "1e3",
    "0x10",
    " 1",
    "1%00",
]
ID_ROUTES = [
    ("DELETE", "/api/v1/tokens/{}"),
    ("DELETE", "/api/v1/wall-tokens/{}"),
    ("PATCH", "/api/v1/users/{}"),
    ("POST", "/api/v1/callbacks/{}/done"),
    ("GET", "/api/v1/campaigns/{}"),
    ("GET", "/api/v1/campaigns/{}/calls"),
    ("GET", "/api/v1/campaigns/{}/plan"),
    ("POST", "/api/v1/campaigns/{}/plan"),
    ("POST", "/api/v1/campaigns/{}/replan"),
    ("POST", "/api/v1/campaigns/{}/cancel"),
    ("GET", "/api/v1/campaigns/{}/results"),
    ("GET", "/api/v1/mystery-calls/{}"),
    ("GET", "/api/v1/mystery-calls/{}/evaluation"),
    ("PUT", "/api/v1/mystery-calls/{}/evaluation"),
    ("POST", "/api/v1/mystery-calls/{}/evaluation"),
    ("POST", "/api/v1/mystery-calls/{}/missed"),
    ("GET", "/api/v1/mystery-calls/{}/recording"),
    ("GET", "/api/v1/campaigns/{}/calls/1"),
    ("GET", "/api/v1/campaigns/1/calls/{}"),
    ("PUT", "/api/v1/campaigns/1/calls/{}/evaluation"),
    ("POST", "/api/v1/campaigns/{}/calls/1/missed"),
    ("GET", "/campagnes/{}"),
    ("GET", "/campagnes/{}/resultats"),
    ("GET", "/appels-mysteres/{}"),
    ("POST", "/webhooks/twilio/mystery/{}/answer"),
]
BAD_DATES = [
    "0001-01-01",
    "9999-12-31",
    "1969-12-31",
    "2101-01-01",
    "２０２６-01-01",
    "2026-1-1",
    "20260101",
    "2026-W01-1",
    "2026-02-30",
    "2026-01-01%00",
]
DATE_ROUTES = ["/api/v1/calls", "/api/v1/engagement8", "/api/v1/affluence"]
BAD_WEEKS = ["9999-W52", "0001-W01", "0000-W01", "1969-W01", "2101-W01", "２０２６-W01", "2026-W54"]
BAD_LIMITS = ["²", "٣", "99999999999999999999999", "-1", "1e3", "0", "1001", " 5", "5%00"]


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_CURSORS = [
    _cursor("0001-01-01T00:00:00+14:00|1"),
    _cursor("9999-12-31T23:59:59-14:00|1"),
    _cursor("2026-01-01T00:00:00+00:00|99999999999999999999"),
    _cursor("2026-01-01T00:00:00+00:00|²"),
    "%00",
]


def url(path: str) -> URL:
    """``path`` sent as written: non-ASCII percent-encoded, ``%00`` kept as a NUL byte."""
    return URL(quote(path, safe="/?&=%:+"), encoded=True)


async def assert_clear_4xx(resp: ClientResponse, what: str, field: str | None = None) -> None:
    assert 400 <= resp.status < 500, (what, resp.status, await resp.text())
    body = await resp.json()
    assert isinstance(body.get("error"), str), (what, body)
    assert body["error"], (what, body)
    if field is not None:
        assert body.get("field") == field, (what, body)


async def send(c: Any, method: str, path: str, **kw: Any) -> ClientResponse:
    body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    resp: ClientResponse = await c.request(method, url(path), allow_redirects=False, **body, **kw)
    return resp


async def test_bad_path_ids_are_clear_4xx_for_an_administrator(client: Client) -> None:
    for method, route in ID_ROUTES:
        for bad in BAD_IDS:
            resp = await send(client, method, route.format(bad))
            await assert_clear_4xx(resp, f"{method} {route.format(bad)}")


async def test_id_errors_say_what_is_wrong(client: Client) -> None:
    resp = await client.delete(url("/api/v1/tokens/99999999999999999999"))
    assert resp.status == 404
    body = await resp.json()
    assert body["field"] == "id"
    assert "9223372036854775807" in body["error"]
    # The largest bigint is a well-formed id: simply not found.
    resp = await client.delete("/api/v1/tokens/9223372036854775807")
    await assert_clear_4xx(resp, "max bigint")
    resp = await client.get(url("/api/v1/campaigns/²/calls/1"))
    assert (await resp.json())["field"] == "campaign"


async def test_bad_path_ids_anonymously(client: Client, anonymous: Any) -> None:
    for method, route in ID_ROUTES:
        for bad in BAD_IDS:
            resp = await send(anonymous, method, route.format(bad))
            assert resp.status < 500, (method, route, bad, resp.status)
            if resp.status >= 400:
                await assert_clear_4xx(resp, f"anonymous {method} {route.format(bad)}")


async def test_signed_mystery_callbacks_with_bad_ids(client: Client, twilio: TwilioPoster) -> None:
    for bad in BAD_IDS:
        path = url(f"/webhooks/twilio/mystery/{bad}/answer")
        resp = await twilio.post(
            {"CallSid": "CA" + "1" * 32},
            path=str(path),
            signed_url=f"http://{client.host}:{client.port}{path}",
        )
        await assert_clear_4xx(resp, f"signed callback {bad}")


async def test_calendar_edges_and_malformed_dates(client: Client) -> None:
    for route in DATE_ROUTES:
        for bad in BAD_DATES:
            for query in (f"from={bad}&to=2026-01-10", f"from=2026-01-01&to={bad}"):
                resp = await client.get(url(f"{route}?{query}"))
                field = "from" if query.startswith(f"from={bad}") else "to"
                await assert_clear_4xx(resp, f"{route}?{query}", field)
    # A short period at either edge of what dates can hold: no overflow anywhere.
    for first, last in [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")]:
        for route in DATE_ROUTES:
            resp = await client.get(url(f"{route}?from={first}&to={last}"))
            await assert_clear_4xx(resp, f"{route} {first}..{last}", "from")
    resp = await client.get("/api/v1/engagement8?from=1969-12-31&to=1970-01-01")
    assert "1970-01-01" in (await resp.json())["error"]


async def test_supported_range_is_open(client: Client) -> None:
    for route in DATE_ROUTES:
        for first, last in [("1970-01-01", "1970-01-07"), ("2100-12-25", "2100-12-31")]:
            resp = await client.get(f"{route}?from={first}&to={last}")
            assert resp.status == 200, (route, first, await resp.text())
    resp = await client.get("/api/v1/digest?week=2100-W52")
    assert resp.status == 200, await resp.text()


async def test_weeks_past_the_calendar(client: Client) -> None:
    for route in ("/api/v1/digest", "/api/v1/digest/preview"):
        for bad in BAD_WEEKS:
            resp = await client.get(url(f"{route}?week={bad}"))
            await assert_clear_4xx(resp, f"{route}?week={bad}", "week")


async def test_limits_and_cursors(client: Client) -> None:
    for bad in BAD_LIMITS:
        resp = await client.get(url(f"/api/v1/calls?limit={bad}"))
        await assert_clear_4xx(resp, f"limit={bad}", "limit")
    for bad in BAD_CURSORS:
        resp = await client.get(url(f"/api/v1/calls?cursor={bad}"))
        await assert_clear_4xx(resp, f"cursor={bad}", "cursor")
    resp = await client.get(url("/api/v1/grids/accueil-telephonique?version=²"))
    await assert_clear_4xx(resp, "version=²", "version")


NUL_QUERIES = [
    ("/api/v1/calls?service=a%00b", "service"),
    ("/api/v1/calls?direction=%00", "direction"),
    ("/api/v1/calls?from=2026-01-01&x%00y=1", "x\x00y"),
    ("/api/v1/engagement8?from=2026-01-01&to=2026-01-02&by=day%00", "by"),
    ("/api/v1/callbacks?service=%00", "service"),
    ("/api/v1/digest?for=a%00@b", "for"),
    ("/api/v1/campaigns/1/calls?evaluator=a%00b", "evaluator"),
    ("/api/v1/campaigns/1/results?format=csv&table=%00", "table"),
    ("/api/v1/grids/accueil-telephonique?version=1%00", "version"),
    ("/api/v1/me?anything=%00", "anything"),
    ("/connexion?suite=/%00", "suite"),
]


async def test_nul_in_query_strings(client: Client, anonymous: Any) -> None:
    for path, field in NUL_QUERIES:
        for who in (client, anonymous):
            resp = await who.get(url(path), allow_redirects=False)
            await assert_clear_4xx(resp, path, field.replace("\x00", "\\x00"))
    resp = await client.get(url("/api/v1/grids/a%00b"))
    await assert_clear_4xx(resp, "NUL in a path")


NUL_BODIES = [
    ("POST", "/api/v1/wall-tokens", {"name": "a\u0000b"}, "name"),
    ("POST", "/api/v1/tokens", {"name": "a\u0000b"}, "name"),
    ("POST", "/api/v1/users", {"email": "a\u0000@b.test", "role": "viewer"}, "email"),
    ("PATCH", "/api/v1/users/1", {"role": "viewer\u0000"}, "role"),
    ("POST", "/api/v1/privacy/erase", {"number": "+3361234\u00005678"}, "number"),
    ("POST", "/api/v1/campaigns", {"name": "a\u0000b"}, "name"),
    ("POST", "/api/v1/campaigns/plan", {"name": "ok", "targets": [{"service": "\u0000"}]}, None),
    ("POST", "/api/v1/grids", {"slug": "a\u0000b"}, "slug"),
    ("POST", "/api/v1/mystery-calls/1/missed", {"reason": "a\u0000b"}, "reason"),
    ("PUT", "/api/v1/mystery-calls/1/evaluation", {"answers": {"x\u0000": 1}}, None),
    ("POST", "/api/v1/campaigns/1/replan", {"note": "\u0000"}, "note"),
]


async def test_nul_in_json_strings(client: Client) -> None:
    for method, path, data, field in NUL_BODIES:
        resp = await client.request(method, path, json=data)
        await assert_clear_4xx(resp, f"{method} {path}", field)
        assert resp.status == 400, path
        assert "NUL" in (await resp.json())["error"], path
    resp = await client.post(
        "/api/v1/campaigns",
        data=b'name = "a\\u0000b"\n',
        headers={"Content-Type": "application/toml"},
    )
    await assert_clear_4xx(resp, "TOML with NUL", "name")


@pytest.mark.parametrize("name", ["targets[0].service", "answers.x\\x00"])
def test_nul_field_paths_name_the_place(name: str) -> None:
    from service.web.bodies import nul_field

    data = (
        {"targets": [{"service": "a\x00"}]} if name.startswith("t") else {"answers": {"x\x00": 1}}
    )
    assert nul_field(data) == name
    assert nul_field({"fine": ["a", {"b": 1}]}) is None
