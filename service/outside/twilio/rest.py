"""Twilio's REST API, behind the few operations Décroché uses (the official ``twilio`` library).

Its base URL is ``DECROCHE_TWILIO_API_BASE`` when set (a local fake in the tests, a
regional edge), Twilio's own otherwise. Open it with ``async with``: the HTTP session is
closed on the way out. The service holds one client for its lifetime
(``service.outside.twilio.client``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import TracebackType

import aiohttp
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from service.settings import Settings


class TwilioUnavailable(Exception):
    """Twilio could not do it now (no credentials, an error, unreachable): try again later.

    ``maybe_done``: the request may have reached Twilio and been carried out (a timeout,
    a connection lost after sending, a 500): doing it again could do it twice.
    ``permanent``: Twilio refused the request itself (a 4xx): trying again cannot help."""

    def __init__(self, message: str, *, maybe_done: bool = False, permanent: bool = False):
        super().__init__(message)
        self.maybe_done = maybe_done
        self.permanent = permanent


class TwilioNotConfigured(TwilioUnavailable):
    """No account: ``TWILIO_ACCOUNT_SID`` or ``TWILIO_AUTH_TOKEN`` is not set."""

    def __init__(self) -> None:
        super().__init__("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not set")


NOT_DONE = {429, 503}  # Twilio says it did nothing: too many requests, unavailable
RECORDING_TIMEOUT_S = 30.0  # a whole recording, fetched to be listened to
RECORDING_CHUNK = 64 * 1024


def _refusal(exc: TwilioRestException) -> TwilioUnavailable:
    status = exc.status
    message = f"Twilio answered {status}: {exc.msg}"
    if status in NOT_DONE:
        return TwilioUnavailable(message)
    if 400 <= status < 500:
        return TwilioUnavailable(message, permanent=True)
    return TwilioUnavailable(message, maybe_done=True)


def _unreachable(exc: BaseException) -> TwilioUnavailable:
    """A network failure: only one before the connection was made is surely harmless."""
    sent = not isinstance(exc, aiohttp.ClientConnectorError)
    return TwilioUnavailable(f"Twilio is unreachable: {exc}", maybe_done=sent)


class TwilioRest:
    """The account's REST client; ``configured`` is False without credentials."""

    def __init__(self, settings: Settings, *, timeout_s: float = 10.0) -> None:
        self._sid = settings.twilio_account_sid
        self._token = settings.twilio_auth_token
        self._base = settings.twilio_api_base
        self._timeout_s = timeout_s
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    @property
    def configured(self) -> bool:
        return bool(self._sid and self._token)

    async def __aenter__(self) -> TwilioRest:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None

    def _api(self) -> Client:
        if not self.configured:
            raise TwilioNotConfigured
        if self._client is None:
            self._http = AsyncTwilioHttpClient(timeout=self._timeout_s)
            self._client = Client(self._sid, self._token, http_client=self._http)
            if self._base:
                self._client.api.base_url = self._base.rstrip("/")
        return self._client

    async def delete_recording(self, account_sid: str, recording_sid: str) -> None:
        """Delete a recording; one that is already gone counts as deleted."""
        api = self._api()
        try:
            async with asyncio.timeout(self._timeout_s):
                await api.api.v2010.accounts(account_sid).recordings(recording_sid).delete_async()
        except TwilioRestException as exc:
            if exc.status == 404:
                return
            raise TwilioUnavailable(f"Twilio answered {exc.status}: {exc.msg}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise TwilioUnavailable(f"Twilio is unreachable: {exc}") from None

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        events: Sequence[str] = ("initiated", "ringing", "answered", "completed"),
        timeout_s: int = 30,
        record: bool = False,
        recording_callback: str | None = None,
    ) -> str:
        """Ask Twilio to place a call whose TwiML is at ``url``; the new call's SID."""
        api = self._api()
        extra: dict[str, object] = {}
        if record:
            extra = {
                "record": True,
                "recording_status_callback": recording_callback,
                "recording_status_callback_event": ["completed"],
            }
        try:
            # The library gives aiohttp no timeout for a request: bound it here.
            async with asyncio.timeout(self._timeout_s):
                call = await api.calls.create_async(
                    to=to,
                    from_=from_,
                    url=url,
                    method="POST",
                    status_callback=status_callback,
                    status_callback_event=list(events),
                    status_callback_method="POST",
                    timeout=timeout_s,
                    **extra,
                )
        except TwilioRestException as exc:
            raise _refusal(exc) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _unreachable(exc) from None
        return str(call.sid)

    def media_url(self, account_sid: str, recording_sid: str) -> str:
        """Where a recording's MP3 is (fetched with the account's credentials)."""
        base = (self._base or "https://api.twilio.com").rstrip("/")
        return f"{base}/2010-04-01/Accounts/{account_sid}/Recordings/{recording_sid}.mp3"

    @property
    def credentials(self) -> tuple[str, str]:
        if not (self._sid and self._token):
            raise TwilioNotConfigured
        return self._sid, self._token

    def _session(self) -> aiohttp.ClientSession:
        """The HTTP session the REST calls use (opened with the client's first request)."""
        self._api()
        assert self._http is not None
        session = self._http.session
        assert isinstance(session, aiohttp.ClientSession)
        return session

    @asynccontextmanager
    async def recording(
        self, recording_sid: str, *, timeout_s: float = RECORDING_TIMEOUT_S
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """The MP3 of one of the account's recordings, as chunks, through the client's own
        session: :class:`TwilioNotConfigured` without an account, :class:`TwilioUnavailable`
        when Twilio answers anything but 200 or cannot be reached (while streaming too)."""
        sid, token = self.credentials
        url = self.media_url(sid, recording_sid)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._session().get(
                url, auth=aiohttp.BasicAuth(sid, token), timeout=timeout
            ) as upstream:
                if upstream.status != 200:
                    raise TwilioUnavailable(f"Twilio answered {upstream.status} for the recording")
                yield upstream.content.iter_chunked(RECORDING_CHUNK)
        except aiohttp.ClientError as exc:
            raise TwilioUnavailable(f"Twilio is unreachable for the recording: {exc}") from None


class Pacer:
    """At most ``per_second`` starts a second (Twilio's outbound call rate, one by default):
    each ``wait`` returns no sooner than ``1 / per_second`` after the previous one."""

    def __init__(self, per_second: float) -> None:
        self.interval = 1.0 / per_second
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = max(self._next, time.monotonic()) + self.interval
