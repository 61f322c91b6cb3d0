"""The SMTP settings of ``DECROCHE_SMTP_URL`` against aiosmtpd speaking TLS: STARTTLS on
submission with a login, implicit TLS (``smtps://``), a wrong password and an untrusted
certificate refused (surely not sent, so retried later), the digest itself over STARTTLS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Literal

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.digest.delivery import DigestSender
from service.keys import DB_POOL
from service.outside.mail import Mailer, MailUnavailable
from tests.service.metrics.test_engagement8 import ingest
from tests.support.digest import DGS, municipality, weeks_of_calls
from tests.support.smtp import Authority, Inbox, smtp_server

Client = TestClient[web.Request, web.Application]
LOGIN = ("qualite@ville.test", "p:ss wörd")  # a colon and a space: quoted in the URL
URL_LOGIN = "qualite%40ville.test:p%3Ass%20w%C3%B6rd@"


def with_login(url: str, login: str = URL_LOGIN) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{login}{rest}"


def message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["To"] = DGS
    msg["Subject"] = subject
    msg.set_content("Bonjour")
    return msg


@pytest.fixture
def authority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Authority:
    """A throw-away CA the sending side trusts (OpenSSL's SSL_CERT_FILE)."""
    ca = Authority(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca.ca_file)
    return ca


IMPLICIT_AUTH = pytest.mark.filterwarnings(  # see tests/support/smtp.py: it is over TLS
    "ignore:Requiring AUTH while not requiring TLS"
)


@pytest.mark.parametrize("tls", ["starttls", pytest.param("implicit", marks=IMPLICIT_AUTH)])
async def test_tls_and_login_deliver(
    authority: Authority, tls: Literal["starttls", "implicit"]
) -> None:
    inbox, seen = Inbox(), list[str]()
    with smtp_server(
        inbox,
        tls=tls,
        authority=authority,
        login=LOGIN,
        auth_log=seen,
    ) as url:
        assert url.startswith("smtps://" if tls == "implicit" else "smtp://")
        await Mailer(with_login(url), "decroche@ville.test").send(message(f"par {tls}"))
    assert [m["Subject"] for _, m in inbox.messages] == [f"par {tls}"]
    assert seen
    assert all(s.endswith(":ok") for s in seen)


async def test_a_wrong_password_is_refused_and_surely_not_sent(authority: Authority) -> None:
    inbox: Inbox = Inbox()
    seen: list[str] = []
    with smtp_server(inbox, tls="starttls", authority=authority, login=LOGIN, auth_log=seen) as url:
        mailer = Mailer(with_login(url, "qualite%40ville.test:faux@"), "decroche@ville.test")
        with pytest.raises(MailUnavailable) as err:
            await mailer.send(message("refusé"))
    assert not err.value.maybe_sent  # the server said no: trying again cannot double it
    assert inbox.messages == []
    assert seen
    assert seen[-1].endswith(":refused")


async def test_without_login_a_server_that_requires_one_refuses(authority: Authority) -> None:
    inbox = Inbox()
    with (
        smtp_server(inbox, tls="starttls", authority=authority, login=LOGIN) as url,
        pytest.raises(MailUnavailable) as err,
    ):
        await Mailer(url, "decroche@ville.test").send(message("anonyme"))
    assert not err.value.maybe_sent
    assert inbox.messages == []


async def test_an_untrusted_certificate_is_refused_before_anything_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Authority(tmp_path)  # the server's certificate comes from a CA nobody trusts
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", Authority(trusted).ca_file)
    inbox = Inbox()
    with (
        smtp_server(inbox, tls="starttls", authority=other) as url,
        pytest.raises(MailUnavailable, match="certificate") as err,
    ):
        await Mailer(url, "decroche@ville.test").send(message("intercepté"))
    assert not err.value.maybe_sent  # refused at the handshake: tried again, never unknown
    assert inbox.messages == []


async def test_the_digest_goes_over_starttls_with_a_login(
    client: Client, authority: Authority
) -> None:
    await ingest(client, weeks_of_calls())
    inbox = Inbox()
    with smtp_server(inbox, tls="starttls", authority=authority, login=LOGIN) as url:
        sender = DigestSender(
            client.app[DB_POOL],
            municipality(),
            Mailer(with_login(url), "Décroché <decroche@ville.test>"),
            clock=lambda: datetime(2026, 10, 26, 6, 30, tzinfo=UTC),
        )
        outcomes = await sender.weekly()
    assert sorted(o.result for o in outcomes) == ["sent"] * 3
    assert len(inbox.messages) == 3


async def test_a_server_that_hangs_up_at_once_surely_did_not_take_the_message() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(MailUnavailable) as err:
            await Mailer(f"smtp://127.0.0.1:{port}", "decroche@ville.test").send(message("x"))
    assert not err.value.maybe_sent  # before any of the message: tried again, not unknown
