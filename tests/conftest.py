"""Test set-up: a real PostgreSQL, migrated once per session, emptied after each test.

The database is the one at ``DATABASE_URL`` when set, otherwise an embedded PostgreSQL
(``pgserver``) started in a temporary directory. Either way the tests work in a database of
their own (``decroche_test_<random>``), created at the start and dropped at the end.

Tests commit for real (the service's group commit spans pool connections, so a rolled-back
outer transaction cannot hold it); isolation comes from truncating the tables after each test.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.app import create_app
from service.db.migrate import apply_migrations
from service.municipality.model import load_municipality
from service.settings import Settings
from tests.support.twilio_client import TwilioPoster

pytest_plugins = [
    "tests.support.browser",  # the ``page`` fixture (headless Chromium)
    "tests.support.smtp",  # ``inbox`` and ``smtp_url`` (aiosmtpd); before rig, which uses it
    "tests.support.rig",  # the ``rig`` fixture (the service, a fake Twilio, a runner)
]

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIG = ROOT / "tests" / "data" / "municipality.toml"
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ADMIN_TOKEN = "test-admin-token-fedcba9876543210"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# Every table the migrations make, read from the catalogue once the database is migrated, so a
# new table is emptied between tests without anyone listing it (partitions go with their
# parent; the record of applied migrations stays).
DATA_TABLES_SQL = """
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT c.relispartition AND c.relname <> 'schema_migrations'
 ORDER BY c.relname
"""


@dataclass(frozen=True)
class Database:
    """The session's test database."""

    dsn: str  # to the test database itself
    admin_dsn: str  # to a database of the same server, for CREATE/DROP DATABASE
    name: str
    tables: tuple[str, ...]  # the data tables, emptied after each test


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_dsn() -> Iterator[str]:
    """A DSN of the PostgreSQL server the tests use (external or embedded)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    from service.db.embedded import start_embedded

    with tempfile.TemporaryDirectory(prefix="decroche-test-") as tmp:
        embedded = start_embedded(Path(tmp))
        yield embedded.dsn


@pytest.fixture(scope="session")
async def database(server_dsn: str) -> AsyncIterator[Database]:
    name = f"decroche_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(server_dsn, name)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
        tables = tuple(r["relname"] for r in await conn.fetch(DATA_TABLES_SQL))
    finally:
        await conn.close()
    db = Database(dsn=dsn, admin_dsn=server_dsn, name=name, tables=tables)
    yield db
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def db(database: Database) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the migrated test database; the data tables are emptied afterwards."""
    conn = await asyncpg.connect(database.dsn)
    yield conn
    await conn.execute(f"TRUNCATE {', '.join(database.tables)} RESTART IDENTITY")
    await conn.close()


def make_settings(dsn: str, tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings(
        municipality=load_municipality(TEST_CONFIG),
        config_path=TEST_CONFIG,
        database_url=dsn,
        data_dir=tmp_path,
        public_url=None,
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token=AUTH_TOKEN,
        twilio_api_base=None,
        webhook_secret="test-webhook-secret",
        smtp_url=None,
        secret_key="test-secret-key",
        admin_token=ADMIN_TOKEN,
    )
    return base.with_overrides(**overrides)


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    return make_settings(database.dsn, tmp_path)


ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client(
    db: asyncpg.Connection, settings: Settings, aiohttp_client: ClientFactory
) -> TestClient[web.Request, web.Application]:
    """A client of the whole service, authenticated as the environment's admin token."""
    return await aiohttp_client(create_app(settings), headers=ADMIN_HEADERS)


@pytest.fixture
async def anonymous(client: TestClient[web.Request, web.Application]) -> AsyncIterator[Any]:
    """A client of the same running service with no credentials (its own cookie jar)."""
    import aiohttp

    # unsafe=True: keep cookies of an IP-address host (the test server is 127.0.0.1).
    jar = aiohttp.CookieJar(unsafe=True)
    base = str(client.make_url("/"))
    async with aiohttp.ClientSession(base_url=base, cookie_jar=jar) as session:
        yield session


@pytest.fixture
def twilio(client: TestClient[web.Request, web.Application]) -> TwilioPoster:
    """Posts callbacks signed exactly as Twilio signs them."""
    return TwilioPoster(client, AUTH_TOKEN)
