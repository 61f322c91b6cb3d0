"""HTTP handlers of the call sources: verify → parse → one core call → answer.

A 2xx is sent only after the core has committed; a database outage is a 503 so the sender
retries. The signature is checked before the body is parsed: a forged or missing signature
is a 403 and nothing is kept, and so is a body whose signature cannot even be checked (a
Twilio body that is not a form: 400). Only a payload that is signed but cannot be
understood goes to quarantine (400, with its reason), so unsigned traffic cannot fill it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.calls.model import Event
from service.calls.queries import quarantine
from service.db.errors import StorageUnavailable, is_unavailable
from service.keys import DB_POOL, INGESTOR, METRICS, SETTINGS
from service.outside.twilio.signing import TwilioRefused, verified_form
from service.web.bodies import TooLarge, read_limited
from service.web.errors import json_error, unavailable
from webhooks import asterisk, cdr, signing, twilio
from webhooks.errors import Malformed

log = logging.getLogger(__name__)

MAX_WEBHOOK_BODY = 64 * 1024  # a Twilio callback is well under 4 KiB
MAX_BATCH_BODY = 1024 * 1024  # a batch of CDRs or queue_log lines (the app-wide limit)


async def _read_body(request: web.Request, limit: int) -> bytes | web.Response:
    try:
        return await read_limited(request, limit)
    except TooLarge as exc:
        return json_error(413, str(exc))


async def _quarantine(request: web.Request, source: str, reason: str, body: bytes) -> None:
    text = body.decode("utf-8", errors="replace")
    await quarantine(
        request.app[DB_POOL], source, request.headers.get("Content-Type"), [(reason, None, text)]
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
        return unavailable(exc)
    metrics.webhook(source, "refused", "malformed")
    # %r: the reason quotes the payload; quoted, it cannot forge a log line.
    log.info("%s webhook quarantined: %r", source, reason)
    return json_error(400, reason)


async def twilio_webhook(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/twilio``: every Twilio voice callback kind."""
    metrics = request.app[METRICS]
    try:
        params, body = await verified_form(
            request, request.app[SETTINGS], lambda: read_limited(request, MAX_WEBHOOK_BODY)
        )
    except TooLarge as exc:
        metrics.webhook("twilio", "refused", "too_large")
        return json_error(413, str(exc))
    except TwilioRefused as refused:
        metrics.webhook("twilio", "refused", refused.reason)
        return json_error(refused.status, refused.message)
    try:
        event = twilio.parse(params, datetime.now(UTC))
    except twilio.Malformed as exc:
        return await _refuse_malformed(request, "twilio", str(exc), body)
    try:
        result = await request.app[INGESTOR].ingest([(event, params)])
    except StorageUnavailable as exc:
        metrics.webhook("twilio", "refused", "database_unavailable")
        return unavailable(exc)
    metrics.webhook("twilio", "accepted" if result.new else "duplicate")
    next_url = request.query.get("next")
    return web.Response(text=twilio.twiml_answer(next_url), content_type="text/xml")


async def _signed_body(request: web.Request, source: str) -> bytes | web.Response:
    """The body of a request signed with ``X-Decroche-Signature``, or the refusal."""
    metrics = request.app[METRICS]
    secret = request.app[SETTINGS].webhook_secret
    if secret is None:
        metrics.webhook(source, "refused", "not_configured")
        log.error("%s webhook refused: DECROCHE_WEBHOOK_SECRET is not set", source)
        return json_error(
            503, f"{source} webhooks are not configured (DECROCHE_WEBHOOK_SECRET unset)"
        )
    body = await _read_body(request, MAX_BATCH_BODY)
    if isinstance(body, web.Response):
        metrics.webhook(source, "refused", "too_large")
        return body
    why = signing.problem(secret, request.headers.get(signing.HEADER), body, time.time())
    if why is not None:
        metrics.webhook(source, "refused", "bad_signature")
        log.warning("%s webhook refused: %r", source, why)
        return json_error(403, why)
    return body


async def _store_batch(
    request: web.Request,
    source: str,
    events: list[tuple[Event, dict[str, Any]]],
    refused: list[dict[str, Any]],
    bodies: list[tuple[str, str, int | None]],
) -> web.Response:
    """Keep the refused parts in quarantine, store the events, answer with the counts."""
    metrics = request.app[METRICS]
    # The same line or record twice in one batch is a duplicate like any other.
    unique = {e.dedup_key: (e, p) for e, p in reversed(events)}
    repeated = len(events) - len(unique)
    events = list(unique.values())
    try:
        # Events first: if the quarantine cannot be written after them, the sender's retry
        # stores the events as duplicates and the refused parts once.
        result = await request.app[INGESTOR].ingest(events)
        if bodies:
            await quarantine(
                request.app[DB_POOL],
                source,
                request.headers.get("Content-Type"),
                [(reason, no, body) for reason, body, no in bodies],
            )
    except Exception as exc:
        if isinstance(exc, StorageUnavailable) or is_unavailable(exc):
            metrics.webhook(source, "refused", "database_unavailable")
            return unavailable(exc)
        raise
    for _ in range(result.new):
        metrics.webhook(source, "accepted")
    for _ in range(result.duplicate + repeated):
        metrics.webhook(source, "duplicate")
    for _ in refused:
        metrics.webhook(source, "refused", "malformed")
    answer = {
        "accepted": result.new,
        "duplicates": result.duplicate + repeated,
        "refused": refused,
    }
    # Nothing usable at all is a bad request; a batch with some good parts is not.
    status = 400 if refused and not events else 200
    return web.json_response(answer, status=status)


async def asterisk_webhook(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/asterisk``: ``queue_log`` lines as text, one per line."""
    body = await _signed_body(request, asterisk.SOURCE)
    if isinstance(body, web.Response):
        return body
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return await _refuse_malformed(request, asterisk.SOURCE, "body is not UTF-8 text", body)
    now = datetime.now(UTC)
    events: list[tuple[Event, dict[str, Any]]] = []
    refused: list[dict[str, Any]] = []
    bodies: list[tuple[str, str, int | None]] = []
    for no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append((asterisk.to_event(asterisk.parse_line(line), now), {"line": line}))
        except Malformed as exc:
            refused.append({"line": no, "reason": str(exc)})
            bodies.append((f"line {no}: {exc}", line, no))
    if not events and not refused:
        return await _refuse_malformed(request, asterisk.SOURCE, "no queue_log line in body", body)
    return await _store_batch(request, asterisk.SOURCE, events, refused, bodies)


async def cdr_webhook(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/cdr``: one call record, or ``{"calls": [...]}``."""
    body = await _signed_body(request, cdr.SOURCE)
    if isinstance(body, web.Response):
        return body
    try:
        rows, batch = cdr.rows_of(body)
    except Malformed as exc:
        return await _refuse_malformed(request, cdr.SOURCE, str(exc), body)
    tz = request.app[SETTINGS].municipality.tz
    now = datetime.now(UTC)
    events: list[tuple[Event, dict[str, Any]]] = []
    refused: list[dict[str, Any]] = []
    bodies: list[tuple[str, str, int | None]] = []
    for index, row in enumerate(rows):
        try:
            events.append((cdr.parse(row, now, tz), row))
        except Malformed as exc:
            if not batch:
                return await _refuse_malformed(request, cdr.SOURCE, str(exc), body)
            entry: dict[str, Any] = {"index": index, "reason": str(exc)}
            if isinstance(row, dict) and isinstance(row.get("id"), str | int):
                entry["id"] = row["id"]
            refused.append(entry)
            bodies.append((f"calls[{index}]: {exc}", orjson.dumps(row).decode(), None))
    return await _store_batch(request, cdr.SOURCE, events, refused, bodies)


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/twilio", twilio_webhook)
    app.router.add_post("/webhooks/asterisk", asterisk_webhook)
    app.router.add_post("/webhooks/cdr", cdr_webhook)
