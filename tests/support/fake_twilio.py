"""A local server speaking the part of Twilio's REST API Décroché uses, and calling back.

It checks HTTP basic auth like Twilio (account SID, auth token), keeps recordings in
memory and records every request, so tests assert what Twilio would have been asked.
``fail_with`` makes it answer every request with that status (Twilio having a bad day).

A call created through ``Calls.json`` is then played like Twilio would: the status
callbacks of the leg it created (signed with the auth token, as Twilio signs), the TwiML
fetched from the call's URL when the callee answers, and for a ``<Dial>`` in it the target
leg's events, the recording, and the ``<Dial>``'s action. Who answers is set per number
(``behaviours``); event times are simulated from ``clock``, ``delay_s`` adds real time
before each callback, and ``out_of_order`` / ``twice`` replay the target leg's events
reversed or doubled.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator


@dataclass(frozen=True)
class Behaviour:
    """How a called number behaves: ``answer``, ``no-answer`` or ``busy``; ``ring_s`` is how
    long it rings before answering (simulated time)."""

    answers: str = "answer"
    ring_s: float = 5.0
    talk_s: int = 90
    presses: bool = True  # a person presses a key when asked; a voicemail does not


@dataclass
class FakeTwilio:
    account_sid: str
    auth_token: str
    recordings: set[str] = field(default_factory=set)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    behaviours: dict[str, Behaviour] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    out_of_order: bool = False
    twice: bool = False
    delay_s: float = 0.0  # real time before each callback (Twilio is not instantaneous)
    respond_after_s: float = 0.0  # a created call's REST answer comes this late (lost?)
    calls: list[dict[str, str]] = field(default_factory=list)  # the Calls.json requests
    callbacks: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> web.Application:
        app = web.Application()
        base = "/2010-04-01/Accounts/{account}"
        app.router.add_delete(f"{base}/Recordings/{{sid}}.json", self._delete_recording)
        app.router.add_get(f"{base}/Recordings/{{sid}}.mp3", self._get_recording)
        app.router.add_post(f"{base}/Calls.json", self._create_call)
        return app

    async def idle(self) -> None:
        """Wait until every call placed so far has played to its end."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _refusal(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        if self.fail_with is not None:
            return _error(self.fail_with, "Service unavailable")
        if not self._authorised(request):
            return _error(401, "Authenticate")
        return None

    def _recording(self, request: web.Request) -> str | web.Response:
        """The recording SID the request names, or Twilio's refusal."""
        refused = self._refusal(request)
        if refused is not None:
            return refused
        sid = request.match_info["sid"]
        if sid not in self.recordings:
            return _error(404, f"The requested resource {request.path} was not found")
        return sid

    async def _delete_recording(self, request: web.Request) -> web.Response:
        sid = self._recording(request)
        if isinstance(sid, web.Response):
            return sid
        self.recordings.discard(sid)
        return web.Response(status=204)

    async def _get_recording(self, request: web.Request) -> web.Response:
        sid = self._recording(request)
        if isinstance(sid, web.Response):
            return sid
        return web.Response(body=b"ID3" + sid.encode(), content_type="audio/mpeg")

    async def _create_call(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        params = {k: str(v) for k, v in (await request.post()).items()}
        for needed in ("To", "From", "Url"):
            if not params.get(needed):
                return _error(400, f"A '{needed}' is required")
        self.calls.append(params)
        sid = "CA" + secrets.token_hex(16)
        task = asyncio.create_task(self._play(sid, params))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if self.respond_after_s:
            await asyncio.sleep(self.respond_after_s)
        body = {
            "sid": sid,
            "account_sid": self.account_sid,
            "status": "queued",
            "to": params["To"],
            "from": params["From"],
            "direction": "outbound-api",
        }
        return web.json_response(body, status=201)

    # -- playing a call ---------------------------------------------------------------------

    async def _post(self, session: aiohttp.ClientSession, url: str, params: dict[str, str]) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        async with session.post(url, data=params, headers={"X-Twilio-Signature": signature}) as r:
            self.callbacks.append((url, params, r.status))
            return await r.text()

    async def _play(self, sid: str, params: dict[str, str]) -> None:
        t0 = self.clock()
        leg = {"AccountSid": self.account_sid, "CallSid": sid, "To": params["To"],
               "From": params["From"], "Direction": "outbound-api"}  # fmt: skip
        status_url = params.get("StatusCallback")
        callee = self.behaviours.get(params["To"], Behaviour())
        async with aiohttp.ClientSession() as session:

            async def status(state: str, at: datetime, **more: str) -> None:
                if status_url:
                    await self._post(session, status_url, leg | {"CallStatus": state,
                                     "Timestamp": format_datetime(at)} | more)  # fmt: skip

            await status("initiated", t0)
            await status("ringing", t0 + timedelta(seconds=1))
            if callee.answers != "answer":
                await status(callee.answers, t0 + timedelta(seconds=30))
                return
            answered = t0 + timedelta(seconds=1 + callee.ring_s)
            # As Twilio does: the TwiML is fetched first, the "answered" event follows.
            twiml = await self._post(session, params["Url"], leg | {"CallStatus": "in-progress"})
            await status("in-progress", answered)
            gather = ET.fromstring(twiml).find("Gather")  # noqa: S314 - the service's TwiML
            if gather is not None:  # a key is asked for after the briefing
                if not callee.presses:
                    await status("completed", answered + timedelta(seconds=20))
                    return
                twiml = await self._post(
                    session,
                    gather.get("action", ""),
                    leg | {"Digits": "1", "CallStatus": "in-progress"},
                )
            pause = ET.fromstring(twiml).find("Pause")  # noqa: S314 - the service's own TwiML
            listened = int(pause.get("length", "1")) if pause is not None else 8
            ended: list[datetime] = []

            async def parent_ends(at: datetime) -> None:
                if not ended:
                    ended.append(at)
                    seconds = str(int((at - answered).total_seconds()))
                    await status("completed", at, CallDuration=seconds)

            start = answered + timedelta(seconds=listened)
            end = await self._dial(session, sid, twiml, start, parent_ends)
            if params.get("Record") == "true":  # the whole call, from its pick-up
                await self._record(session, params.get("RecordingStatusCallback"), sid,
                                      int((end - answered).total_seconds()))  # fmt: skip
            await parent_ends(end)

    async def _record(
        self, session: aiohttp.ClientSession, url: str | None, call: str, seconds: int
    ) -> None:
        rec = "RE" + secrets.token_hex(16)
        self.recordings.add(rec)
        if url:
            await self._post(session, url, {
                "AccountSid": self.account_sid, "CallSid": call, "RecordingSid": rec,
                "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/"
                                f"{self.account_sid}/Recordings/{rec}",
                "RecordingStatus": "completed", "RecordingDuration": str(seconds),
            })  # fmt: skip

    async def _dial(
        self,
        session: aiohttp.ClientSession,
        parent: str,
        twiml: str,
        t: datetime,
        parent_ends: Callable[[datetime], Awaitable[None]],
    ) -> datetime:
        """Play the ``<Dial><Number>`` of ``twiml`` (if any); when the parent leg ends.
        ``out_of_order`` also reports the parent's end before the ``<Dial>``'s action."""
        dial = ET.fromstring(twiml).find("Dial")  # noqa: S314 - the service under test's TwiML
        if dial is None:
            return t
        number = dial.find("Number")
        assert number is not None
        assert number.text
        target = self.behaviours.get(number.text.strip(), Behaviour())
        child = "CA" + secrets.token_hex(16)
        leg = {"AccountSid": self.account_sid, "CallSid": child, "ParentCallSid": parent,
               "To": number.text.strip(), "From": dial.get("callerId", "")}  # fmt: skip
        rang = t + timedelta(seconds=1)
        events = [("initiated", t), ("ringing", rang)]
        if target.answers == "answer":
            picked = rang + timedelta(seconds=target.ring_s)
            end = picked + timedelta(seconds=target.talk_s)
            events += [("in-progress", picked), ("completed", end)]
            verdict = "completed"
        else:
            end = rang + timedelta(seconds=20)
            events.append((target.answers, end))
            verdict = target.answers
        if self.out_of_order:
            events.reverse()
        url = number.get("statusCallback")
        for state, at in events * (2 if self.twice else 1):
            if url:
                await self._post(session, url, leg | {"CallStatus": state,
                                 "Timestamp": format_datetime(at)})  # fmt: skip
        if verdict == "completed" and dial.get("record", "do-not-record") != "do-not-record":
            await self._record(session, dial.get("recordingStatusCallback"), parent, target.talk_s)
        if self.out_of_order:
            await parent_ends(end + timedelta(seconds=3))
        action = dial.get("action")
        if action:
            duration = str(target.talk_s) if verdict == "completed" else "0"
            await self._post(session, action, {
                "AccountSid": self.account_sid, "CallSid": parent, "DialCallSid": child,
                "DialCallStatus": verdict, "DialCallDuration": duration,
            })  # fmt: skip
        return end + timedelta(seconds=3)


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"code": 20000 + status, "message": message, "status": status}, status=status
    )
