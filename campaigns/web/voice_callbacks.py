"""``POST /webhooks/twilio/mystery/{id}/{event}``: Twilio's callbacks of assisted calls.

Checked like every Twilio callback (``X-Twilio-Signature`` over the public URL); a body
that is not form-encoded goes to quarantine with the reason. The core of each event is in
``campaigns/run/voice_flow.py``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from aiohttp import web

from campaigns.run import voice, voice_flow
from campaigns.web.http import path_id, utc_now
from service.calls.queries import quarantine
from service.db.errors import is_unavailable
from service.keys import DB_POOL, SETTINGS
from service.outside.twilio.signing import signature_valid, signed_url
from service.web.bodies import TooLarge, read_limited
from service.web.errors import json_error, unavailable

log = logging.getLogger(__name__)

SOURCE = "twilio-mystery"
MAX_BODY = 64 * 1024


def _xml(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/xml")


async def mystery_callback(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    token = settings.twilio_auth_token
    if token is None:
        log.error("mystery-call callback refused: TWILIO_AUTH_TOKEN is not set")
        return json_error(503, "Twilio webhooks are not configured (TWILIO_AUTH_TOKEN unset)")
    event = request.match_info["event"]
    if event not in voice.EVENTS:
        return json_error(404, f"no such callback: {event}")
    call_id = path_id(request)
    try:
        body = await read_limited(request, MAX_BODY)
    except TooLarge as exc:
        return json_error(413, str(exc))
    try:
        params = dict(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        )
    except (UnicodeDecodeError, ValueError):
        return await _refuse(request, "body is not form-encoded UTF-8", body)
    if not signature_valid(
        token, signed_url(request), params, request.headers.get("X-Twilio-Signature")
    ):
        log.warning("mystery-call callback with a bad signature refused: %s", signed_url(request))
        return json_error(403, "signature does not match (check DECROCHE_PUBLIC_URL)")
    if not params.get("CallSid"):
        return await _refuse(request, "CallSid is missing", body)
    pool, now = request.app[DB_POOL], utc_now()
    try:
        base = settings.public_url or f"{request.scheme}://{request.host}"
        if event == "answer":
            return _xml(await voice_flow.answered(pool, settings, base, call_id, params, now))
        if event == "ready":
            return _xml(await voice_flow.ready(pool, settings, base, call_id, params, now))
        if event == "dialed":
            return _xml(await voice_flow.dialed(pool, call_id, params, now))
        handler = {
            "evaluator": voice_flow.evaluator_leg,
            "target": voice_flow.target_leg,
            "recording": voice_flow.recorded,
            "probe": voice_flow.probe_leg,
        }[event]
        await handler(pool, call_id, params, now)
    except voice_flow.UnknownRun:
        log.info("mystery-call callback for no current run of call %d (%s)", call_id, event)
        if event == "dialed":
            return _xml(voice.hangup_twiml())
    except Exception as exc:
        if is_unavailable(exc):
            return unavailable(exc)
        raise
    return web.Response(status=204)


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
