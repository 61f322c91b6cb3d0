"""aiosmtpd as the SMTP server the service sends to, on a free local port.

Every accepted message is kept (parsed) with the moment it arrived; ``refuse`` makes the
server answer 451 to every message (a server having a bad day), which the sender sees.
``smtp_server(..., tls=...)`` speaks STARTTLS or implicit TLS with a certificate signed by
a throw-away authority (trustme), and with ``login`` requires that user and password.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Inbox:
    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.messages: list[tuple[datetime | None, EmailMessage]] = []
        self.refuse = False
        self.hang_s = 0.0  # accept each message only after this long (the sender gives up)
        self.clock = clock

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        if self.hang_s:
            await asyncio.sleep(self.hang_s)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((self.clock() if self.clock else None, msg))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for _, m in self.messages if address in str(m["To"])]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Authority:
    """A certificate authority for one test: ``ca_file`` is what a client must trust."""

    def __init__(self, directory: Any) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(directory / "smtp-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert("127.0.0.1").configure_cert(ctx)
        return ctx


def _authenticator(login: tuple[str, str], seen: list[str]) -> Any:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == login
        )
        seen.append(f"{mechanism}:{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def smtp_server(
    inbox: Inbox,
    *,
    tls: Literal["starttls", "implicit"] | None = None,
    authority: Authority | None = None,
    login: tuple[str, str] | None = None,
    auth_log: list[str] | None = None,
    port: int | None = None,
) -> Iterator[str]:
    """Run the server; yields its ``DECROCHE_SMTP_URL`` (without the credentials)."""
    port = port or free_port()
    kwargs: dict[str, Any] = {}
    if tls:
        assert authority is not None, "TLS needs an authority"
        ctx = authority.server_context()
        if tls == "starttls":
            kwargs.update(tls_context=ctx, require_starttls=True)
        else:
            kwargs.update(ssl_context=ctx)
    if login:
        kwargs.update(
            auth_required=True,
            # aiosmtpd only counts STARTTLS as TLS; over implicit TLS the whole channel is.
            auth_require_tls=tls == "starttls",
            authenticator=_authenticator(login, auth_log if auth_log is not None else []),
        )
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    scheme = "smtps" if tls == "implicit" else "smtp"
    query = "?starttls=1" if tls == "starttls" else ""
    try:
        yield f"{scheme}://127.0.0.1:{port}{query}"
    finally:
        controller.stop()


@pytest.fixture
def inbox() -> Inbox:
    """An empty inbox, which ``smtp_url`` delivers into."""
    return Inbox()


@pytest.fixture
def smtp_url(inbox: Inbox) -> Iterator[str]:
    """A running aiosmtpd delivering into ``inbox``."""
    with smtp_server(inbox) as url:
        yield url
