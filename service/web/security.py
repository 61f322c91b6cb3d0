"""Security headers and a request id on every answer, including redirects and errors.

The request id (``X-Request-Id``) is the proxy's when it sent a sane one, else a fresh one;
it is in the answer's header, in the body of every JSON error and in the log line of a 500.
A path or query string holding a NUL character is refused here, before any handler.

The pages load scripts and styles from ``/static`` only: the CSP allows no inline script
and no inline style attribute (styles set from scripts through the CSSOM are not affected).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from service.keys import METRICS
from service.web.errors import (
    REQUEST_ID,
    REQUEST_ID_HEADER,
    ApiError,
    Handler,
    json_error,
    new_request_id,
)
from service.web.params import refuse_nul

MAX_BODY = 1024 * 1024  # no route takes more; webhooks and forms set smaller limits

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Wall links carry their token in the URL: never send it to another site.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _apply(response: web.StreamResponse, path: str, request_id: str) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if path.startswith("/api/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # figures and calls: nothing cached
    response.headers[REQUEST_ID_HEADER] = request_id
    _stamp_error_body(response, request_id)


def _stamp_error_body(response: web.StreamResponse, request_id: str) -> None:
    """The request id in a JSON error built without ``json_error`` (a safety net: every
    JSON error carries it, whoever wrote it)."""
    if response.status < 400 or not isinstance(response, web.Response):
        return
    if response.content_type != "application/json" or not isinstance(response.body, bytes):
        return
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return
    if isinstance(body, dict) and "error" in body and "request_id" not in body:
        response.body = orjson.dumps({**body, "request_id": request_id})


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        # Refused before any handler runs, whether or not the route reads a body.
        request.app[METRICS].refuse("too_large")
        return json_error(413, f"body too large (at most {limit} bytes)")
    try:
        refuse_nul(request)
    except ApiError as exc:
        request.app[METRICS].refuse("nul_character")
        return json_error(exc.status, exc.message, exc.field)
    return await handler(request)


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = new_request_id(request.headers)
    token = REQUEST_ID.set(request_id)
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        _apply(exc, request.path, request_id)
        raise
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:  # a stream (SSE) sets its headers before it starts
        _apply(response, request.path, request_id)
    return response


def stamp_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Before a stream is prepared (SSE, a recording): the headers every answer has,
    which the middleware can no longer add once the stream has started."""
    _apply(response, request.path, REQUEST_ID.get() or new_request_id(request.headers))
