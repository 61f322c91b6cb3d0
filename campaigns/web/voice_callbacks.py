"""``POST /webhooks/twilio/mystery/{id}/{event}``: Twilio's callbacks of assisted calls.

Checked like every Twilio callback (``service.outside.twilio.signing.verified_form``:
``X-Twilio-Signature`` over the public URL) before anything reads the body: a missing or
wrong signature, or a body that is not a form, is refused and nothing is kept. Only a
signed callback that cannot be understood (no ``CallSid``) goes to quarantine with the
reason. The core of each event is in ``campaigns/run/voice_flow.py``.
"""

from __future__ import annotations

import logging

from aiohttp import web

from campaigns.run import voice, voice_flow
from campaigns.web.http import path_id, utc_now
from service.calls.queries import quarantine
from service.db.errors import is_unavailable
from service.keys import DB_POOL, SETTINGS
from service.outside.twilio.signing import TwilioRefused, verified_form
from service.settings import Settings
from service.web.bodies import TooLarge, read_limited
from service.web.errors import ApiError, json_error, unavailable

log = logging.getLogger(__name__)

SOURCE = "twilio-mystery"
MAX_BODY = 64 * 1024


# The events whose answer is only "received"; the others answer with TwiML.
LEG_EVENTS = {
    "evaluator": voice_flow.evaluator_leg,
    "target": voice_flow.target_leg,
    "recording": voice_flow.recorded,
    "probe": voice_flow.probe_leg,
}


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/xml")


async def mystery_callback(request: web.Request) -> web.StreamResponse:
    """Verify the callback, then hand its event to ``voice_flow``; TwiML or 204 back."""
    settings = request.app[SETTINGS]
    try:
        params, body = await verified_form(request, settings, lambda: _callback_body(request))
    except TwilioRefused as refused:
        return json_error(refused.status, refused.message)
    if not params.get("CallSid"):
        return await _refuse(request, "CallSid is missing", body)
    event, call_id = request.match_info["event"], path_id(request)
    try:
        twiml = await _handle(request, settings, event, call_id, params)
    except voice_flow.UnknownRun:
        log.info("mystery-call callback for no current run of call %d (%s)", call_id, event)
        twiml = voice.hangup_twiml() if event == "dialed" else None
    except Exception as exc:
        if is_unavailable(exc):
            return unavailable(exc)
        raise
    return web.Response(status=204) if twiml is None else _xml(twiml)


async def _callback_body(request: web.Request) -> bytes:
    """The body of a callback to a known event of a call: 404 for another path, 413 past
    ``MAX_BODY``. Read once the service is known configured, as it always was."""
    event = request.match_info["event"]
    if event not in voice.EVENTS:
        raise ApiError(f"no such callback: {event}", status=404)
    path_id(request)
    try:
        return await read_limited(request, MAX_BODY)
    except TooLarge as exc:
        raise ApiError(str(exc), status=413) from None


async def _handle(
    request: web.Request,
    settings: Settings,
    event: str,
    call_id: int,
    params: dict[str, str],
) -> str | None:
    """What ``event`` changes in the call's run; the TwiML it answers with, if any."""
    pool, now = request.app[DB_POOL], utc_now()
    base = settings.public_url or f"{request.scheme}://{request.host}"
    if event == "answer":
        return await voice_flow.answered(pool, settings, base, call_id, params, now)
    if event == "ready":
        return await voice_flow.ready(pool, settings, base, call_id, params, now)
    if event == "dialed":
        return await voice_flow.dialed(pool, call_id, params, now)
    await LEG_EVENTS[event](pool, call_id, params, now)
    return None


async def _refuse(request: web.Request, reason: str, body: bytes) -> web.Response:
    try:
        text = body.decode("utf-8", "replace")
        await quarantine(request.app[DB_POOL], SOURCE, request.content_type, [(reason, None, text)])
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        return unavailable(exc)
    return json_error(400, reason)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio/mystery/{id}/{event}", mystery_callback)
