"""JSON errors (``{"error": "...", "field": "..."}``) and the middleware that guarantees them.

No stack trace ever reaches a client: an unexpected exception is logged and answered with a
plain 500 message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.db.errors import describe, is_unavailable
from service.keys import METRICS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A fault the client can fix; becomes a 4xx JSON answer."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def json_error(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, str] = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def unavailable(exc: BaseException) -> web.Response:
    """The 503 of a request that could not reach the database: retry later, and why."""
    return web.json_response(
        {"error": "database unavailable; retry later", "reason": describe(exc)},
        status=503,
        headers={"Retry-After": "5"},
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into JSON answers and count every request by route and status."""
    metrics = request.app[METRICS]
    try:
        response = await handler(request)
    except ApiError as exc:
        response = json_error(exc.status, exc.message, exc.field)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = json_error(exc.status, exc.reason)
    except Exception as exc:
        if is_unavailable(exc):
            log.warning("503 on %s %s: %s", request.method, request.path, describe(exc))
            response = unavailable(exc)
        else:
            log.exception("unhandled error on %s %s", request.method, request.path)
            response = json_error(500, "internal error; the incident was logged")
    metrics.request(request.method, _route_name(request), response.status)
    return response
