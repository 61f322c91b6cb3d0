"""``decroche digest preview`` and ``decroche digest send`` as real processes, with the
town's digest recipients in its configuration file and aiosmtpd as the SMTP server."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.digest.weeks import IsoWeek
from tests.conftest import TEST_CONFIG, Database
from tests.service.metrics.test_engagement8 import ingest
from tests.support.digest import CHEF_EC, DGS, MAIRE, WEEK, weeks_of_calls
from tests.support.processes import decroche_env, run_decroche
from tests.support.smtp import Inbox

Client = TestClient[web.Request, web.Application]
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The test town, with a global list and a head for état civil."""
    text = TEST_CONFIG.read_text(encoding="utf-8")
    head = f'[services.digest]\nrecipients = ["{CHEF_EC}"]\n\n[services.policy]\n'
    assert text.count("[services.policy]\nanswer_within_s = 20") == 1  # état civil's
    text = text.replace("[services.policy]\nanswer_within_s = 20", head + "answer_within_s = 20")
    text += f'\n[digest]\nrecipients = ["{DGS}", "{MAIRE}"]\nsend_at = "mon 07:30"\n'
    path = tmp_path / "ville.toml"
    path.write_text(text, encoding="utf-8")
    return path


def digest(
    database: Database, tmp_path: Path, config: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="k", **env)
    return run_decroche("digest", *args, "--config", str(config), env=environ)


def subjects(messages: list[EmailMessage]) -> list[str]:
    return [str(m["Subject"]) for m in messages]


async def test_preview_writes_the_page_and_the_message(
    client: Client, database: Database, tmp_path: Path, config: Path
) -> None:
    await ingest(client, weeks_of_calls())
    page, eml = tmp_path / "s43.html", tmp_path / "s43.eml"
    res = digest(
        database, tmp_path, config, "preview", "--week", str(WEEK), "--output", str(page),
        "--for", CHEF_EC.upper(), "--eml", str(eml),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    html = page.read_text(encoding="utf-8")
    assert "Synthèse de la semaine 43" in html
    assert "Votre service" in html
    assert 'src="data:image/png;base64,' in html
    assert html.index("Votre service") < html.index("Les services cette semaine")
    raw = eml.read_bytes()
    assert b"multipart/mixed" in raw
    assert b"Content-ID:" in raw
    assert f"To: {CHEF_EC.upper()}".encode() in raw or f"To: {CHEF_EC}".encode() in raw

    res = digest(database, tmp_path, config, "preview", "--week", "2026-W54")
    assert res.returncode == 2
    assert "argument --week: '2026-W54': 2026 has no week 54" in res.stderr
    res = digest(database, tmp_path, config, "preview", "--for", "inconnu@ville.test")
    assert res.returncode == 1
    assert "inconnu@ville.test is not a recipient" in res.stderr
    assert DGS in res.stderr


async def test_send_once_then_already_sent_then_forced(
    client: Client, database: Database, tmp_path: Path, config: Path, inbox: Inbox, smtp_url: str
) -> None:
    await ingest(client, weeks_of_calls())
    env = {"DECROCHE_SMTP_URL": smtp_url, "DECROCHE_MAIL_FROM": "decroche@ville.test"}
    res = digest(database, tmp_path, config, "send", "--week", str(WEEK), **env)
    assert res.returncode == 0, res.stderr
    assert sorted(str(m["To"]) for _, m in inbox.messages) == sorted([DGS, MAIRE, CHEF_EC])
    assert f"{DGS}: sent" in res.stdout
    assert "digest 2026-W43" in res.stderr  # the progress bar

    res = digest(database, tmp_path, config, "send", "--week", str(WEEK), **env)
    assert res.returncode == 0, res.stderr
    assert len(inbox.messages) == 3  # nothing sent twice
    assert f"{MAIRE}: already sent" in res.stdout

    res = digest(database, tmp_path, config, "send", "--week", str(WEEK), "--force", **env)
    assert res.returncode == 0, res.stderr
    assert len(inbox.messages) == 6
    assert len(set(subjects(inbox.to(DGS)))) == 1

    inbox.refuse = True
    res = digest(database, tmp_path, config, "send", "--week", str(WEEK.shift(-1)), **env)
    assert res.returncode == 1
    assert "3 of 3 messages were not sent" in res.stderr
    assert "refused or unreachable" in res.stdout
    inbox.refuse = False
    res = digest(database, tmp_path, config, "send", "--week", str(WEEK.shift(-1)), **env)
    assert res.returncode == 0, res.stderr
    assert len(inbox.messages) == 9


def test_send_needs_an_smtp_server_and_a_week(
    database: Database, tmp_path: Path, config: Path
) -> None:
    res = digest(database, tmp_path, config, "send", "--week", str(WEEK))
    assert res.returncode == 1
    assert "DECROCHE_SMTP_URL is not set" in res.stderr
    # This week is not over: sent now, it would be marked sent with part of the week.
    this_week = IsoWeek.of(datetime.now(UTC).astimezone(PARIS).date())
    res = digest(
        database, tmp_path, config, "send", "--week", str(this_week),
        DECROCHE_SMTP_URL="smtp://127.0.0.1:1",
    )  # fmt: skip
    assert res.returncode == 1
    assert f"{this_week} is not over yet" in res.stderr
    res = digest(database, tmp_path, config, "send", DECROCHE_SMTP_URL="smtp://127.0.0.1:1")
    assert res.returncode == 2
    assert "--week" in res.stderr
    res = digest(
        database, tmp_path, TEST_CONFIG, "send", "--week", str(WEEK),
        DECROCHE_SMTP_URL="smtp://127.0.0.1:1",
    )  # fmt: skip
    assert res.returncode == 1
    assert "no recipients" in res.stderr
