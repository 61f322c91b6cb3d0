"""HTTP handlers of the call sources: verify → parse → one core call → answer.

A 2xx is sent only after the core has committed; a database outage is a 503 so the sender
retries; a forged or missing signature is a 403 and nothing is kept; a payload that is
signed but cannot be understood is a 400 and goes to quarantine with its reason.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from aiohttp import web

from service.calls.queries import quarantine
from service.db.errors import StorageUnavailable, is_unavailable
from service.keys import DB_POOL, INGESTOR, METRICS, SETTINGS
from service.web.errors import json_error
from webhooks import twilio

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024  # a Twilio callback is well under 4 KiB


def public_url(request: web.Request) -> str:
    """The URL the sender signed: ``DECROCHE_PUBLIC_URL`` + path + query when configured
    (behind a proxy the URL this server sees is not the one Twilio called), else the URL
    as the request's Host header names it."""
    base = request.app[SETTINGS].public_url
    if base is None:
        base = f"{request.scheme}://{request.host}"
    return base + request.raw_path


async def _read_body(request: web.Request) -> bytes | web.Response:
    if request.content_length is not None and request.content_length > MAX_WEBHOOK_BODY:
        return json_error(413, f"body too large (limit {MAX_WEBHOOK_BODY} bytes)")
    body = await request.content.read(MAX_WEBHOOK_BODY + 1)
    if len(body) > MAX_WEBHOOK_BODY:
        return json_error(413, f"body too large (limit {MAX_WEBHOOK_BODY} bytes)")
    return body


async def _quarantine(request: web.Request, source: str, reason: str, body: bytes) -> None:
    await quarantine(
        request.app[DB_POOL],
        source=source,
        reason=reason,
        body=body.decode("utf-8", errors="replace"),
        content_type=request.headers.get("Content-Type"),
    )


async def _refuse_malformed(
    request: web.Request, source: str, reason: str, body: bytes
) -> web.Response:
    """400 with the reason, after keeping the payload; 503 if it cannot be kept."""
    metrics = request.app[METRICS]
    try:
        await _quarantine(request, source, reason, body)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # Answering 400 would make the sender drop a payload we could not keep.
        metrics.webhook(source, "refused", "database_unavailable")
        return json_error(503, "database unavailable; retry later")
    metrics.webhook(source, "refused", "malformed")
    log.info("%s webhook quarantined: %s", source, reason)
    return json_error(400, reason)


async def twilio_webhook(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/twilio``: every Twilio voice callback kind."""
    settings = request.app[SETTINGS]
    metrics = request.app[METRICS]
    token = settings.twilio_auth_token
    if token is None:
        metrics.webhook("twilio", "refused", "not_configured")
        log.error(
            "Twilio webhook refused: TWILIO_AUTH_TOKEN is not set, so signatures cannot be checked"
        )
        return json_error(503, "Twilio webhooks are not configured (TWILIO_AUTH_TOKEN unset)")
    body = await _read_body(request)
    if isinstance(body, web.Response):
        metrics.webhook("twilio", "refused", "too_large")
        return body
    signature = request.headers.get("X-Twilio-Signature")
    if not signature:
        metrics.webhook("twilio", "refused", "missing_signature")
        return json_error(403, "missing X-Twilio-Signature header")
    try:
        params = dict(
            parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
        )
    except (UnicodeDecodeError, ValueError):
        return await _refuse_malformed(request, "twilio", "body is not form-encoded UTF-8", body)
    if not twilio.signature_valid(token, public_url(request), params, signature):
        metrics.webhook("twilio", "refused", "bad_signature")
        log.warning(
            "Twilio webhook with a bad signature refused (URL checked: %s)", public_url(request)
        )
        return json_error(403, "signature does not match (check DECROCHE_PUBLIC_URL)")
    try:
        event = twilio.parse(params, datetime.now(UTC))
    except twilio.Malformed as exc:
        return await _refuse_malformed(request, "twilio", str(exc), body)
    try:
        result = await request.app[INGESTOR].ingest([(event, params)])
    except StorageUnavailable:
        metrics.webhook("twilio", "refused", "database_unavailable")
        return json_error(503, "database unavailable; retry later")
    metrics.webhook("twilio", "accepted" if result.new else "duplicate")
    next_url = request.query.get("next")
    return web.Response(text=twilio.twiml_answer(next_url), content_type="text/xml")


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio", twilio_webhook)
