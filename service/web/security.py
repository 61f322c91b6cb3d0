"""Security headers on every answer, including redirects and errors.

The pages load scripts and styles from ``/static`` only: the CSP allows no inline script
and no inline style attribute (styles set from scripts through the CSSOM are not affected).
"""

from __future__ import annotations

from aiohttp import web

from service.keys import METRICS
from service.web.errors import Handler, json_error

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


def _apply(response: web.StreamResponse, path: str) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if path.startswith("/api/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # figures and calls: nothing cached


@web.middleware
async def security_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    limit = MAX_BODY
    if request.content_length is not None and request.content_length > limit:
        # Refused before any handler runs, whether or not the route reads a body.
        request.app[METRICS].refuse("too_large")
        response: web.StreamResponse = json_error(413, f"body too large (at most {limit} bytes)")
        _apply(response, request.path)
        return response
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply(exc, request.path)
        raise
    if not response.prepared:  # a stream (SSE) sets its headers before it starts
        _apply(response, request.path)
    return response
