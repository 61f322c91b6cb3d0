"""Issue 24, as an attacker: concurrent password guessing, a flood of anonymous logins
holding argon2's memory, and open redirects after login — all through real HTTP."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import aiohttp
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import service.accounts.login as login_module
from service.accounts.login import MAX_PER_ACCOUNT, MAX_PER_ADDRESS
from service.accounts.model import Role
from service.accounts.passwords import verify_password
from service.app import create_app
from service.keys import DB_POOL
from tests.conftest import ClientFactory, Database, make_settings
from tests.service.accounts.test_accounts import CSRF, PASSWORD, Client, log_in, make_user

SUITE = re.compile(r'name="suite" value="([^"]*)"')


class Verifications:
    """Counts the argon2 verifications that run (and the most at once), optionally holding
    them until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.count = 0
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, stored: str | None, password: str) -> bool:
        with self._lock:
            self.count += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            self.release.wait(30)
            return verify_password(stored, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Verifications]:
    def install(*, hold: bool = False) -> Verifications:
        counter = Verifications(hold=hold)
        monkeypatch.setattr(login_module, "verify_password", counter)
        return counter

    return install


async def form_token(session: aiohttp.ClientSession) -> str:
    page = await (await session.get("/connexion")).text()
    m = CSRF.search(page)
    assert m is not None
    return m.group(1)


async def attempt(
    session: aiohttp.ClientSession, csrf: str, email: str, password: str
) -> aiohttp.ClientResponse:
    resp = await session.post(
        "/connexion",
        data={"email": email, "password": password, "csrf": csrf, "suite": "/"},
        allow_redirects=False,
    )
    await resp.read()
    return resp


# --- finding 1: throttling under concurrency -----------------------------------------------


async def test_forty_simultaneous_guesses_on_one_account_reach_argon2_five_times(
    client: Client, anonymous: Any, verifications: Callable[..., Verifications]
) -> None:
    await make_user(client, "cible@ville.test", Role.VIEWER)
    counted = verifications()
    csrf = await form_token(anonymous)
    answers = await asyncio.gather(
        *(attempt(anonymous, csrf, "cible@ville.test", f"guess number {i}") for i in range(40))
    )
    statuses = Counter(r.status for r in answers)
    assert counted.count == MAX_PER_ACCOUNT
    assert statuses == {401: MAX_PER_ACCOUNT, 429: 40 - MAX_PER_ACCOUNT}
    refused = next(r for r in answers if r.status == 429)
    assert "Trop de tentatives" in await refused.text()
    # The right password now waits too, and is not even checked.
    assert (await log_in(anonymous, "cible@ville.test")).status == 429
    assert counted.count == MAX_PER_ACCOUNT
    failures = await client.app[DB_POOL].fetchval("SELECT count(*) FROM login_failures")
    assert failures == MAX_PER_ACCOUNT


async def test_guesses_spread_over_two_instances_share_one_count(
    client: Client,
    database: Database,
    tmp_path: Path,
    aiohttp_client: ClientFactory,
    verifications: Callable[..., Verifications],
) -> None:
    await make_user(client, "cible@ville.test", Role.VIEWER)
    other = await aiohttp_client(create_app(make_settings(database.dsn, tmp_path)))
    counted = verifications()
    answers = []
    async with (
        aiohttp.ClientSession(
            base_url=str(client.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as at_a,
        aiohttp.ClientSession(
            base_url=str(other.make_url("/")), cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as at_b,
    ):
        csrf_a, csrf_b = await form_token(at_a), await form_token(at_b)
        answers = await asyncio.gather(
            *(
                attempt(session, csrf, "cible@ville.test", f"guess number {i}")
                for i in range(20)
                for session, csrf in ((at_a, csrf_a), (at_b, csrf_b))
            )
        )
    # The instances share only PostgreSQL, and still count the account's attempts as one.
    assert counted.count == MAX_PER_ACCOUNT
    assert Counter(r.status for r in answers) == {401: MAX_PER_ACCOUNT, 429: 40 - MAX_PER_ACCOUNT}


async def test_sixty_simultaneous_guesses_from_one_address_reach_argon2_twenty_times(
    client: Client, anonymous: Any, verifications: Callable[..., Verifications]
) -> None:
    counted = verifications()
    csrf = await form_token(anonymous)
    answers = await asyncio.gather(
        *(attempt(anonymous, csrf, f"n{i}@ville.test", "guess guess guess") for i in range(60))
    )
    statuses = Counter(r.status for r in answers)
    # At most twenty reach argon2; the rest are refused (429), or turned away unhashed when
    # too many wait for argon2 at once (503, not counted against the address).
    assert counted.count <= MAX_PER_ADDRESS
    assert statuses[401] == counted.count
    assert set(statuses) <= {401, 429, 503}
    assert statuses[429] >= 60 - MAX_PER_ADDRESS - statuses[503]
    # One by one now: the address gets exactly twenty checks in the window, then only 429s.
    for i in range(MAX_PER_ADDRESS + 1):
        checked_before = counted.count
        resp = await attempt(anonymous, csrf, f"m{i}@ville.test", "guess guess guess")
        if checked_before < MAX_PER_ADDRESS:
            assert resp.status in (401, 503)
        else:
            assert resp.status == 429
    assert counted.count == MAX_PER_ADDRESS


async def test_a_good_login_clears_its_attempt_and_the_account_opens_again(
    client: Client, anonymous: Any, verifications: Callable[..., Verifications]
) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    verifications()
    csrf = await form_token(anonymous)
    for _ in range(MAX_PER_ACCOUNT - 1):
        assert (await attempt(anonymous, csrf, "agent@ville.test", "wrong wrong")).status == 401
    assert (await log_in(anonymous, "agent@ville.test")).status == 303
    pool = client.app[DB_POOL]
    assert await pool.fetchval("SELECT count(*) FROM login_failures") == 0


# --- the bound on anonymous work -------------------------------------------------------------


async def test_a_flood_of_logins_is_turned_away_instead_of_queueing_argon2(
    client: Client, anonymous: Any, verifications: Callable[..., Verifications]
) -> None:
    held = verifications(hold=True)
    csrf = await form_token(anonymous)
    flood = 15
    tasks = [
        asyncio.create_task(attempt(anonymous, csrf, f"f{i}@ville.test", "guess guess guess"))
        for i in range(flood)
    ]
    try:
        # While two verifications are held, the ones that cannot wait are answered at once.
        async with asyncio.timeout(20):
            while sum(t.done() for t in tasks) < 5:
                await asyncio.wait(
                    [t for t in tasks if not t.done()], return_when=asyncio.FIRST_COMPLETED
                )
        turned_away = [t.result() for t in tasks if t.done()]
        assert held.running <= 2
    finally:
        held.release.set()
    answers = await asyncio.gather(*tasks)
    assert held.peak <= 2
    assert all(r.status == 503 for r in turned_away)
    busy = turned_away[0]
    assert int(busy.headers["Retry-After"]) > 0
    assert "réessayez" in await busy.text()
    statuses = Counter(r.status for r in answers)
    assert statuses == {503: 5, 401: flood - 5}
    assert held.count == flood - 5
    # Those turned away did not use up the address's attempts.
    failures = await client.app[DB_POOL].fetchval("SELECT count(*) FROM login_failures")
    assert failures == flood - 5


# --- finding 5: open redirects after login ---------------------------------------------------

# From the OWASP and PortSwigger open-redirect lists, and the attacker's own.
PAYLOADS = [
    "//evil.example",
    "///evil.example",
    "////evil.example/",
    "/\\evil.example",
    "\\/evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/%09/evil.example",
    "/\t/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/ /evil.example",
    "//evil.example ",
    "/\r\n/evil.example",
    "/%0a/evil.example",
    "/%0d/evil.example",
    "/%0D%0A/evil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%252F/evil.example",
    "/%255Cevil.example",
    "/%25252F/evil.example",
    "/%00/evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "http:\\\\evil.example",
    "//ville.example@evil.example",
    "http://ville.example@evil.example/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "java%0ascript:alert(1)",
    "\tjavascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "/\u200b/evil.example",
    "/\u3000/evil.example",
    "//evil.example/%2F..",
    "%09//evil.example",
    "/%09%09/evil.example",
    "/%5C%5Cevil.example",
]
KEPT = [
    "/",
    "/?from=2026-11-16",
    "/mur",
    "/campagnes/3?onglet=resultats#x",
    "/rappels?q=a%20b&service=%C3%A9tat-civil",
]


async def test_the_login_form_keeps_only_local_targets(client: Client, anonymous: Any) -> None:
    for target in PAYLOADS + KEPT:
        resp = await anonymous.get(f"/connexion?suite={quote(target, safe='')}")
        assert resp.status == 200, target
        m = SUITE.search(await resp.text())
        assert m is not None
        assert unescape(m.group(1)) == (target if target in KEPT else "/"), target


async def test_logging_in_never_redirects_to_another_site(client: Client, anonymous: Any) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    for target in PAYLOADS + KEPT:
        resp = await log_in(anonymous, "agent@ville.test", suite=target)
        assert resp.status == 303, target
        assert resp.headers["Location"] == (target if target in KEPT else "/"), target


def browser_views(target: str) -> list[str]:
    """What a browser (or a proxy decoding once more) may make of ``target``: ends stripped of
    controls and spaces, tabs and line breaks dropped, backslashes taken for slashes, at
    each level of percent-decoding."""
    views = []
    for _ in range(4):
        seen = target.strip("".join(map(chr, range(33))))
        views.append("".join(c for c in seen if c not in "\t\r\n").replace("\\", "/"))
        target = unquote(target)
    return views


@given(st.text(alphabet=st.sampled_from("/\\\t\r\n :%.@aj250?#\u200b"), max_size=12) | st.text())
@example("/\t/evil.example")
@example("/%09/evil.example")
@example("/%5Cevil.example")
def test_any_target_is_kept_only_when_every_reading_is_local(target: str) -> None:
    kept = login_module._safe_next(target)
    if kept == "/":
        return
    assert kept == target
    for seen in browser_views(kept):
        parts = urlsplit(seen)
        assert seen.startswith("/"), seen
        assert not seen.startswith("//"), seen
        assert not parts.scheme, seen
        assert not parts.netloc, seen


async def test_the_right_password_still_opens_under_the_new_rules(
    client: Client, anonymous: Any
) -> None:
    await make_user(client, "agent@ville.test", Role.VIEWER)
    resp = await log_in(anonymous, "agent@ville.test", PASSWORD, suite="/mur")
    assert resp.status == 303
    assert resp.headers["Location"] == "/mur"
