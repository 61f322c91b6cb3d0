"""Outgoing e-mail through the SMTP server of ``DECROCHE_SMTP_URL`` (aiosmtplib).

``smtp://user:pass@host:587?starttls=1`` submits with STARTTLS, ``smtps://host:465`` over
implicit TLS, ``smtp://host:25`` in the clear (a relay on the same host or network). The
URL is checked when the settings load; a server that refuses or cannot be reached raises
:class:`MailUnavailable`, so the job that sends can say so and try again.

The service holds one :class:`Mailer` (``app[MAILER]``, :func:`mailer_ctx`); the CLI builds
its own with the same factory, :func:`mailer_for`.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from aiohttp import web

from service.keys import MAILER, SETTINGS

if TYPE_CHECKING:  # service.settings checks SMTP URLs with this module: no cycle at run time
    from service.settings import Settings

TRUE = {"1", "true", "yes", "on"}
REFUSED = (  # the server said no, or was never reached: the message surely did not go
    aiosmtplib.SMTPResponseException,
    aiosmtplib.SMTPRecipientsRefused,
    aiosmtplib.SMTPConnectError,
    ConnectionRefusedError,
    ssl.SSLCertVerificationError,  # during the handshake, before any of the message
)
FALSE = {"0", "false", "no", "off"}


class MailUnavailable(Exception):
    """The message could not be handed to the SMTP server (not configured, refused, down).

    ``maybe_sent``: the connection was lost or timed out after the message may have been
    accepted — sending again could deliver it twice."""

    def __init__(self, message: str, *, maybe_sent: bool = False) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool


def parse_smtp_url(url: str) -> SmtpServer:
    """The server an ``smtp://`` or ``smtps://`` URL names; ValueError says what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError(f"{url!r} must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host (smtp://user:pass@host:587?starttls=1)")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number") from None
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - {"starttls"})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} in {url!r} (known: starttls)")
    flag = query.get("starttls", ["0"])[-1].lower()
    if flag not in TRUE | FALSE:
        raise ValueError(f"starttls must be 1 or 0 in {url!r}")
    implicit = parts.scheme == "smtps"
    return SmtpServer(
        host=parts.hostname,
        port=port or (465 if implicit else 587 if flag in TRUE else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit,
        starttls=flag in TRUE and not implicit,
    )


class Mailer:
    """Sends messages from ``sender``; ``configured`` is False without an SMTP URL."""

    def __init__(self, smtp_url: str | None, sender: str, *, timeout_s: float = 20.0) -> None:
        self.server = parse_smtp_url(smtp_url) if smtp_url else None
        self.sender = sender
        self.timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        return self.server is not None

    async def send(self, message: EmailMessage) -> None:
        """Hand ``message`` (its From set here when absent) to the SMTP server."""
        if self.server is None:
            raise MailUnavailable("DECROCHE_SMTP_URL is not set")
        if "From" not in message:
            message["From"] = self.sender
        s = self.server
        smtp = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.implicit_tls,
            start_tls=s.starttls,
            timeout=self.timeout_s,
        )
        try:
            # Connecting, TLS and login come before any of the message: whatever fails
            # there, it surely did not go.
            await smtp.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailUnavailable(
                f"the SMTP server {s.host}:{s.port} could not be reached or refused us: {exc}"
            ) from None
        try:
            await smtp.send_message(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # A reply code refused it: surely not sent. Lost on the way (a timeout, a
            # disconnection during the transaction): perhaps sent.
            raise MailUnavailable(
                f"the SMTP server {s.host}:{s.port} refused or failed: {exc}",
                maybe_sent=not isinstance(exc, REFUSED),
            ) from None
        finally:
            if smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await smtp.quit()
            smtp.close()


def mailer_for(settings: Settings) -> Mailer:
    """The mailer of ``settings``: ``DECROCHE_SMTP_URL``, from ``DECROCHE_MAIL_FROM``."""
    return Mailer(settings.smtp_url, settings.mail_from)


async def mailer_ctx(app: web.Application) -> AsyncIterator[None]:
    """``app[MAILER]``: the service's one mailer (it connects per message: nothing to close)."""
    app[MAILER] = mailer_for(app[SETTINGS])
    yield
