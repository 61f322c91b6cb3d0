"""Accounts, roles, sessions, tokens, CSRF, login throttling, the audit log and hardening."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.accounts import queries as accounts
from service.accounts.login import MAX_PER_ACCOUNT, MAX_PER_ADDRESS
from service.accounts.model import Role
from service.accounts.passwords import hash_password
from service.keys import DB_POOL
from tests.conftest import TEST_CONFIG, ClientFactory, Database, make_settings
from tests.support.paths import ROOT
from tests.support.processes import decroche_env, run_decroche

Client = TestClient[web.Request, web.Application]
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PERIOD = "from=2026-11-16&to=2026-11-16"
_serial = itertools.count()


async def make_user(client: Client, email: str, role: Role) -> int:
    pool = client.app[DB_POOL]
    uid = await accounts.add_user(pool, email, role)
    await accounts.set_password(pool, uid, hash_password(PASSWORD))
    return uid


async def bearer(client: Client, role: Role | None) -> dict[str, str]:
    """Headers of a fresh API token of a new user with ``role`` (None: a wall token)."""
    pool = client.app[DB_POOL]
    if role is None:
        _, token = await accounts.create_token(pool, "wall", None, "écran accueil")
    else:
        uid = await make_user(client, f"{role.value}-{next(_serial)}@ville.test", role)
        _, token = await accounts.create_token(pool, "api", uid, "script")
    return {"Authorization": f"Bearer {token}"}


async def log_in(
    session: aiohttp.ClientSession, email: str, password: str = PASSWORD, suite: str = "/"
) -> aiohttp.ClientResponse:
    page = await (await session.get("/connexion")).text()
    m = CSRF.search(page)
    assert m is not None
    return await session.post(
        "/connexion",
        data={"email": email, "password": password, "csrf": m.group(1), "suite": suite},
        allow_redirects=False,
    )


ROUTES = [
    # (method, path, least role; None = wall-token route)
    ("GET", f"/api/v1/engagement8?{PERIOD}", Role.VIEWER),
    ("GET", f"/api/v1/affluence?{PERIOD}", Role.VIEWER),
    ("GET", "/api/v1/me", Role.VIEWER),
    ("GET", "/api/v1/tokens", Role.VIEWER),
    ("GET", "/api/v1/calls", Role.QUALITY),
    ("GET", "/api/v1/campaigns", Role.QUALITY),
    ("GET", "/api/v1/grids", Role.QUALITY),
    ("GET", "/api/v1/mystery-calls", Role.VIEWER),  # one's own mystery calls
    ("GET", "/api/v1/users", Role.ADMIN),
    ("GET", "/api/v1/wall-tokens", Role.ADMIN),
    ("GET", "/api/v1/audit", Role.ADMIN),
]
RANK = {Role.VIEWER: 1, Role.QUALITY: 2, Role.ADMIN: 3}


async def test_each_role_on_each_route_family(client: Client, anonymous: Any) -> None:
    tokens = {role: await bearer(client, role) for role in Role}
    wall = await bearer(client, None)
    for method, path, need in ROUTES:
        for role, headers in tokens.items():
            resp = await anonymous.request(method, path, headers=headers)
            want = 200 if RANK[role] >= RANK[need] else 403
            assert resp.status == want, (path, role, await resp.text())
        resp = await anonymous.request(method, path, headers=wall)
        assert resp.status == 403, (path, "wall")
        resp = await anonymous.request(method, path)
        assert resp.status == 401, (path, "nobody")
        assert "error" in await resp.json()
    # Erasing a caller is an administrator's act.
    erase = {"number": "+33600000000"}
    for role, headers in tokens.items():
        resp = await anonymous.post("/api/v1/privacy/erase", json=erase, headers=headers)
        assert resp.status == (200 if role is Role.ADMIN else 403), (role, await resp.text())
    # Pages: nobody is sent to the login page (keeping where they were going); a wall token
    # opens no page but the wall.
    resp = await anonymous.get("/?from=2026-11-16", allow_redirects=False)
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith("/connexion?suite=")
    assert unquote(location.split("=", 1)[1]) == "/?from=2026-11-16"
    resp = await anonymous.get("/", headers=wall, allow_redirects=False)
    assert resp.status == 403
    assert "Accès refusé" in await resp.text()
    resp = await anonymous.get("/", headers=tokens[Role.VIEWER])
    assert resp.status == 200
    # Open routes stay open.
    assert (await anonymous.get("/healthz")).status == 200
    assert (await anonymous.get("/connexion")).status == 200
    assert (await anonymous.get("/static/style.css")).status == 200
    # Webhooks answer to their signature, not to a login.
    assert (await anonymous.post("/webhooks/twilio", data={"CallSid": "CA1"})).status == 403


async def test_unknown_and_bad_credentials_are_401(client: Client, anonymous: Any) -> None:
    for header in ("Bearer nope", "Basic dXNlcjpwdw==", "Bearer ", "Token x"):
        resp = await anonymous.get(
            f"/api/v1/engagement8?{PERIOD}", headers={"Authorization": header}
        )
        assert resp.status == 401, header
    metrics = await (await client.get("/metrics")).text()
    assert 'decroche_refused_requests_total{reason="bad_token"} 1.0' in metrics
    assert 'decroche_refused_requests_total{reason="bad_authorization"} 3.0' in metrics


async def test_login_session_logout(client: Client, anonymous: Any) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    resp = await log_in(anonymous, "Agent@Ville.test", suite="/?from=2026-11-16")
    assert resp.status == 303
    assert resp.headers["Location"] == "/?from=2026-11-16"
    cookie = resp.cookies["decroche_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 12 * 3600
    me = await (await anonymous.get("/api/v1/me")).json()
    assert me["email"] == "agent@ville.test"
    assert me["role"] == "viewer"
    # Logging out needs the session's CSRF token, and ends the session in the database.
    assert (await anonymous.post("/deconnexion", data={"csrf": "x"})).status == 403
    resp = await anonymous.post("/deconnexion", data={"csrf": me["csrf"]}, allow_redirects=False)
    assert resp.status == 303
    pool = client.app[DB_POOL]
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0
    assert (await anonymous.get("/api/v1/me")).status == 401


async def test_a_stolen_cookie_dies_with_its_session(client: Client, anonymous: Any) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    resp = await log_in(anonymous, "agent@ville.test")
    value = resp.cookies["decroche_session"].value
    # A forged signature, and a session that expired, open nothing.
    sid, _, sig = value.rpartition(".")
    forged = {"Cookie": f"decroche_session={sid}.{'0' * len(sig)}"}
    async with aiohttp.ClientSession() as stranger:
        resp = await stranger.get(client.make_url("/api/v1/me"), headers=forged)
        assert resp.status == 401
    pool = client.app[DB_POOL]
    await pool.execute("UPDATE sessions SET expires_at = now() - interval '1 second'")
    assert (await anonymous.get("/api/v1/me")).status == 401
    resp = await anonymous.get("/", allow_redirects=False)
    assert resp.status == 303


async def test_wrong_passwords_are_throttled_per_account_and_address(
    client: Client, anonymous: Any
) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    for _ in range(MAX_PER_ACCOUNT):
        assert (await log_in(anonymous, "agent@ville.test", "wrong password!!")).status == 401
    # Now even the right password waits: the account is throttled.
    resp = await log_in(anonymous, "agent@ville.test")
    assert resp.status == 429
    assert "Trop de tentatives" in await resp.text()
    # Per address: many accounts tried from one place.
    for i in range(MAX_PER_ADDRESS - MAX_PER_ACCOUNT):
        await log_in(anonymous, f"x{i}@ville.test", "wrong password!!")
    await make_user(client, "autre@ville.test", Role.VIEWER)
    assert (await log_in(anonymous, "autre@ville.test")).status == 429
    metrics = await (await client.get("/metrics")).text()
    assert 'decroche_refused_requests_total{reason="login_throttled"} 2.0' in metrics
    # The window passes: the right password opens again, and clears the account's count.
    await client.app[DB_POOL].execute("UPDATE login_failures SET at = at - interval '1 hour'")
    assert (await log_in(anonymous, "agent@ville.test")).status == 303


async def test_login_form_needs_its_csrf_token_and_a_local_target(
    client: Client, anonymous: Any
) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    resp = await anonymous.post(
        "/connexion", data={"email": "agent@ville.test", "password": PASSWORD, "csrf": "forged"}
    )
    assert resp.status == 403
    assert "expiré" in await resp.text()
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = await log_in(anonymous, "agent@ville.test", suite=target)
        assert resp.headers["Location"] == "/", target


async def test_csrf_guards_cookie_sessions_not_bearer_tokens(
    client: Client, anonymous: Any
) -> None:
    await make_user(client, "qualite@ville.test", Role.QUALITY)
    await log_in(anonymous, "qualite@ville.test")
    resp = await anonymous.post("/api/v1/tokens", json={"name": "tableur"})
    assert resp.status == 403
    assert "CSRF" in (await resp.json())["error"]
    me = await (await anonymous.get("/api/v1/me")).json()
    resp = await anonymous.post(
        "/api/v1/tokens", json={"name": "tableur"}, headers={"X-CSRF-Token": me["csrf"]}
    )
    assert resp.status == 201
    token = (await resp.json())["token"]
    assert token.startswith("dcr_")
    # Only the hash is stored; the token works as a bearer, without CSRF.
    pool = client.app[DB_POOL]
    assert await pool.fetchval("SELECT count(*) FROM tokens WHERE token_hash = $1", token) == 0
    auth = {"Authorization": f"Bearer {token}"}
    resp = await client.session.post(
        client.make_url("/api/v1/tokens"), json={"name": "second"}, headers=auth
    )
    assert resp.status == 201


async def test_revoked_tokens_and_disabled_accounts_open_nothing(
    client: Client, anonymous: Any
) -> None:
    headers = await bearer(client, Role.QUALITY)
    assert (await anonymous.get("/api/v1/calls", headers=headers)).status == 200
    listed = await (await anonymous.get("/api/v1/tokens", headers=headers)).json()
    (mine,) = listed["tokens"]
    assert mine["prefix"].startswith("dcr_")
    assert "token" not in mine
    resp = await anonymous.delete(f"/api/v1/tokens/{mine['id']}", headers=headers)
    assert resp.status == 200
    assert (await anonymous.get("/api/v1/calls", headers=headers)).status == 401
    # Disabling an account ends its sessions and tokens at once.
    uid = await make_user(client, "parti@ville.test", Role.ADMIN)
    _, token = await accounts.create_token(client.app[DB_POOL], "api", uid, "x")
    await log_in(anonymous, "parti@ville.test")
    resp = await client.patch(f"/api/v1/users/{uid}", json={"disabled": True})
    assert resp.status == 200
    assert (await anonymous.get("/api/v1/me")).status == 401
    gone = await client.session.get(
        client.make_url("/api/v1/me"), headers={"Authorization": f"Bearer {token}"}
    )
    assert gone.status == 401
    assert (await log_in(anonymous, "parti@ville.test")).status == 401


async def test_wall_tokens_are_created_revoked_and_open_only_the_wall(
    client: Client, anonymous: Any
) -> None:
    resp = await client.post("/api/v1/wall-tokens", json={"name": "Accueil, écran 1"})
    assert resp.status == 201
    created = await resp.json()
    assert created["link"].endswith(f"/mur?token={created['token']}")
    wall = {"Authorization": f"Bearer {created['token']}"}
    for path in ("/api/v1/me", f"/api/v1/engagement8?{PERIOD}", "/api/v1/calls"):
        assert (await anonymous.get(path, headers=wall)).status == 403, path
    # A token in the query string is read on wall routes only.
    resp = await anonymous.get(f"/?token={created['token']}", allow_redirects=False)
    assert resp.status == 303
    resp = await client.delete(f"/api/v1/wall-tokens/{created['id']}")
    assert resp.status == 200
    assert (await anonymous.get("/api/v1/me", headers=wall)).status == 401
    assert (await client.delete(f"/api/v1/wall-tokens/{created['id']}")).status == 404


async def test_users_api_and_the_one_time_set_up_link(client: Client, anonymous: Any) -> None:
    resp = await client.post("/api/v1/users", json={"email": "Chef@Ville.test", "role": "quality"})
    assert resp.status == 201
    made = await resp.json()
    assert made["email"] == "chef@ville.test"
    assert (await client.post("/api/v1/users", json=made)).status == 409
    link = made["setup_link"]
    path = link[link.index("/connexion/activer") :]
    page = await (await anonymous.get(path)).text()
    csrf = CSRF.search(page)
    assert csrf is not None
    jeton = path.split("jeton=")[1]
    form = {"jeton": jeton, "csrf": csrf.group(1), "password": "court", "confirm": "court"}
    resp = await anonymous.post("/connexion/activer", data=form)
    assert resp.status == 400
    assert "au moins 12 caractères" in await resp.text()
    form |= {"password": PASSWORD, "confirm": PASSWORD}
    resp = await anonymous.post("/connexion/activer", data=form, allow_redirects=False)
    assert resp.status == 303
    # Used once: the link is dead, the password works.
    assert (await anonymous.get(path)).status == 404
    assert (await log_in(anonymous, "chef@ville.test")).status == 303
    users = await (await client.get("/api/v1/users")).json()
    assert [(u["email"], u["role"], u["active"]) for u in users["users"]] == [
        ("chef@ville.test", "quality", True)
    ]
    bad = await client.post("/api/v1/users", json={"email": "x@ville.test", "role": "boss"})
    assert bad.status == 400
    assert (await bad.json())["field"] == "role"


async def test_the_audit_log_records_who_read_personal_data(client: Client, anonymous: Any) -> None:
    headers = await bearer(client, Role.QUALITY)
    await anonymous.get("/api/v1/calls?from=2026-11-01&to=2026-11-30", headers=headers)
    await client.post("/api/v1/users", json={"email": "new@ville.test", "role": "viewer"})
    entries = (await (await client.get("/api/v1/audit")).json())["entries"]
    actions = [(e["action"], e["actor"]) for e in entries]
    assert ("user.add", "env-admin") in actions
    view = next(e for e in entries if e["action"] == "calls.view")
    assert view["actor"].startswith("user:")
    assert "(token:" in view["actor"]
    assert view["detail"] == {"from": "2026-11-01", "to": "2026-11-30"}


async def test_security_headers_on_pages_api_errors_and_redirects(
    client: Client, anonymous: Any
) -> None:
    for resp in (
        await client.get("/"),
        await client.get(f"/api/v1/engagement8?{PERIOD}"),
        await client.get("/api/v1/engagement8?from=bad"),
        await anonymous.get("/connexion"),
        await anonymous.get("/", allow_redirects=False),
        await client.get("/nowhere"),
    ):
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "no-referrer"
    api = await client.get(f"/api/v1/engagement8?{PERIOD}")
    assert api.headers["Cache-Control"] == "no-store"


async def test_metrics_can_be_restricted_to_a_token(
    db: Any, database: Database, tmp_path: Path, aiohttp_client: ClientFactory
) -> None:
    from service.app import create_app

    app = create_app(make_settings(database.dsn, tmp_path, metrics_token="scrape-me"))
    c = await aiohttp_client(app)
    assert (await c.get("/metrics")).status == 401
    ok = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert ok.status == 200
    assert "decroche_refused_requests_total" in await ok.text()


BODY_ROUTES = [
    ("POST", "/api/v1/users"),
    ("PATCH", "/api/v1/users/1"),
    ("POST", "/api/v1/tokens"),
    ("POST", "/api/v1/wall-tokens"),
    ("DELETE", "/api/v1/tokens/abc"),
    ("POST", "/api/v1/privacy/erase"),
]


async def test_oversized_and_garbage_bodies_are_clear_4xx(client: Client) -> None:
    for method, path in BODY_ROUTES:
        big = await client.request(
            method, path, data=b"{" + b" " * 2_000_000, headers={"Content-Type": "application/json"}
        )
        assert big.status == 413, path
        for body, ctype in [
            (b"{not json", "application/json"),
            (b"[1, 2]", "application/json"),
            (b"email=x", "text/plain"),
            (b"\xff\xfe", "application/json"),
        ]:
            resp = await client.request(method, path, data=body, headers={"Content-Type": ctype})
            assert 400 <= resp.status < 500, (path, body, resp.status)
            assert "error" in await resp.json()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    route=st.sampled_from(BODY_ROUTES),
    body=st.one_of(
        _json.map(lambda v: __import__("json").dumps(v).encode()),
        st.fixed_dictionaries(
            {"email": st.text(max_size=300), "role": st.text(max_size=10), "name": _json}
        ).map(lambda v: __import__("json").dumps(v).encode()),
        st.fixed_dictionaries({"number": st.text(max_size=50)}).map(
            lambda v: __import__("json").dumps(v).encode()
        ),
        st.binary(max_size=200),
    ),
)
async def test_fuzzed_json_bodies_never_get_a_5xx(
    client: Client, route: tuple[str, str], body: bytes
) -> None:
    method, path = route
    resp = await client.request(
        method, path, data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status < 500, (path, body, await resp.text())


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    form=st.dictionaries(
        st.sampled_from(["email", "password", "csrf", "suite", "jeton", "confirm", "x"]),
        st.text(max_size=300),
        max_size=6,
    ),
    path=st.sampled_from(["/connexion", "/connexion/activer", "/deconnexion"]),
)
async def test_fuzzed_forms_never_get_a_5xx(
    client: Client, anonymous: Any, form: dict[str, str], path: str
) -> None:
    resp = await anonymous.post(path, data=form, allow_redirects=False)
    assert resp.status < 500, (path, form, await resp.text())


def test_cli_user_add_prints_a_set_up_link_then_lists_and_disables(
    database: Database, tmp_path: Path
) -> None:
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="k")
    cfg = ("--config", str(TEST_CONFIG))
    res = run_decroche("user", "add", "DGS@Ville.test", "--role", "admin", *cfg, env=env)
    assert res.returncode == 0, res.stderr
    assert "added dgs@ville.test (admin)" in res.stdout
    assert re.search(r"http://127\.0\.0\.1:8080/connexion/activer\?jeton=\S{40,}", res.stdout)
    again = run_decroche("user", "add", "dgs@ville.test", "--role", "viewer", *cfg, env=env)
    assert again.returncode == 1
    assert "already exists" in again.stderr
    bad = run_decroche("user", "add", "not-an-address", "--role", "viewer", *cfg, env=env)
    assert bad.returncode == 1
    listed = run_decroche("user", "list", *cfg, env=env)
    assert re.search(r"dgs@ville\.test\s+admin\s+set-up pending", listed.stdout)
    off = run_decroche("user", "disable", "dgs@ville.test", *cfg, env=env)
    assert "disabled dgs@ville.test" in off.stdout
    assert "disabled" in run_decroche("user", "list", *cfg, env=env).stdout
    wall = run_decroche("wall-token", "create", "Accueil", *cfg, env=env)
    assert re.search(r"/mur\?token=dcrmur_\S+", wall.stdout)
    assert "live" in run_decroche("wall-token", "list", *cfg, env=env).stdout
    gone = run_decroche("wall-token", "revoke", "1", *cfg, env=env)
    assert gone.returncode == 0, gone.stderr
    assert "revoked" in run_decroche("wall-token", "list", *cfg, env=env).stdout


@pytest.mark.parametrize("lifetime", [timedelta(hours=-1)])
async def test_expired_set_up_links_are_refused(
    client: Client, anonymous: Any, lifetime: timedelta
) -> None:
    uid = await accounts.add_user(client.app[DB_POOL], "late@ville.test", Role.VIEWER)
    token = await accounts.new_setup_link_token(client.app[DB_POOL], uid, lifetime)
    resp = await anonymous.get(f"/connexion/activer?jeton={token}")
    assert resp.status == 404
    assert "plus valable" in await resp.text()


def test_every_environment_variable_is_documented() -> None:
    root = ROOT
    code = (root / "service/settings.py").read_text()
    read = set(re.findall(r'_[a-z0-9]+\(env, "([A-Z_]+)"', code))
    assert {"DECROCHE_ADMIN_TOKEN", "DECROCHE_MAIL_FROM", "DECROCHE_CAMPAIGN_TICK_S"} <= read
    documented = (root / "docs/configuration.md").read_text()
    assert [v for v in sorted(read) if f"`{v}`" not in documented] == []
