"""aiosmtpd as the SMTP server the service sends to, on a free local port.

Every accepted message is kept (parsed) with the moment it arrived; ``refuse`` makes the
server answer 451 to every message (a server having a bad day), which the sender sees.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


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


@contextmanager
def smtp_server(inbox: Inbox) -> Iterator[str]:
    """Run the server; yields its ``DECROCHE_SMTP_URL``."""
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()
