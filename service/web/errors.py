"""JSON errors (``{"error": "...", "field": "...", "request_id": "..."}``) and the middleware
that guarantees them.

No stack trace ever reaches a client: an unexpected exception is logged and answered with a
plain 500 message. Every answer has a request id (``X-Request-Id``, set by
``security.security_middleware``); a JSON error carries it in its body and the log line of a
500 carries it too, so a user can report the one and an operator find the other.
Request-controlled text reaches a log line only through :func:`loggable`, which cannot
forge a line.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar

from aiohttp import web

from service.db.errors import describe, is_unavailable
from service.keys import METRICS

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
# The request being answered (set by the outermost middleware for the handler's task).
REQUEST_ID: ContextVar[str | None] = ContextVar("decroche_request_id", default=None)
# What a proxy's id may look like to be kept (a UUID, nginx's $request_id, a trace id…):
# anything else is replaced, so no header can put spaces, quotes or control characters in
# a log line or a page.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+=/-]{7,127}")


def new_request_id(headers: Mapping[str, str]) -> str:
    """The id of a request: its proxy's ``X-Request-Id`` when sane, otherwise a fresh one."""
    given = headers.get(REQUEST_ID_HEADER, "")
    if SANE_REQUEST_ID.fullmatch(given):
        return given
    return secrets.token_hex(8)


def current_request_id() -> str | None:
    """The id of the request being answered, if any (to show on a page, to log)."""
    return REQUEST_ID.get()


def loggable(text: str, limit: int = 300) -> str:
    """``text`` quoted as one log line can hold it: newlines, NUL, escape sequences and
    every other unprintable character are escaped (``repr``), and it is cut at ``limit``."""
    if len(text) > limit:
        return repr(text[:limit]) + "…"
    return repr(text)


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
    rid = current_request_id()
    if rid is not None:
        body["request_id"] = rid
    return web.json_response(body, status=status)


def _route_name(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "unmatched"


def unavailable(exc: BaseException) -> web.Response:
    """The 503 of a request that could not reach the database: retry later, and why."""
    body = {"error": "database unavailable; retry later", "reason": describe(exc)}
    rid = current_request_id()
    if rid is not None:
        body["request_id"] = rid
    return web.json_response(body, status=503, headers={"Retry-After": "5"})


def _where(request: web.Request) -> str:
    """The request for a log line: its id, method and path as received (still encoded,
    quoted: ``%0A`` stays ``%0A``, a decoded newline would start a forged line)."""
    return f"[{current_request_id()}] {request.method} {loggable(request.raw_path)}"


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
            log.warning("503 on %s: %s", _where(request), describe(exc))
            response = unavailable(exc)
        else:
            log.exception("unhandled error on %s", _where(request))
            response = json_error(500, "internal error; the incident was logged")
    metrics.request(request.method, _route_name(request), response.status)
    return response
