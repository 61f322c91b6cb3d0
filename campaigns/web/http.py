"""What the campaign API handlers share: bodies (JSON or TOML), ids, the audit, names,
and the translation of a flow's :class:`CampaignError` into a JSON error and its status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

import orjson
from aiohttp import web

from campaigns import flows
from service.accounts import queries as accounts
from service.keys import DB_POOL, SETTINGS
from service.municipality.tables import ConfigError, parse_toml
from service.web.auth import principal
from service.web.bodies import TooLarge, read_limited, refuse_nul
from service.web.errors import ApiError, current_request_id
from service.web.params import path_id as strict_path_id

BODY_LIMIT = 512 * 1024  # a campaign of thousands of calls is a few kilobytes
TOML_TYPES = ("application/toml", "text/toml", "text/x-toml")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The HTTP status of each kind of flow error.
STATUS: dict[type[flows.CampaignError], int] = {
    flows.Invalid: 400,
    flows.Forbidden: 403,
    flows.NotFound: 404,
    flows.Conflict: 409,
    flows.Unplannable: 422,
    flows.Faulty: 500,
}


def status_of(exc: flows.CampaignError) -> int:
    """The HTTP status that says what kind of error ``exc`` is (500: a kind not mapped)."""
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)


class ErrorJson(TypedDict):
    """A refused request: why, the field at fault, each problem (a plan that cannot be)."""

    error: str
    field: NotRequired[str]
    problems: NotRequired[list[str]]
    request_id: NotRequired[str]


def answers(handler: Handler) -> Handler:
    """Turn a flow's :class:`CampaignError` into the JSON error (with ``problems``)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except flows.CampaignError as exc:
            body: ErrorJson = {"error": exc.message}
            if exc.field:
                body["field"] = exc.field
            if exc.problems:
                body["problems"] = exc.problems
            rid = current_request_id()
            if rid is not None:
                body["request_id"] = rid
            return web.json_response(body, status=status_of(exc))

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


async def read_body(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The body as a mapping, and its text when it was TOML (kept as the campaign's source);
    a NUL character anywhere in it is a 400 naming the field (``bodies.refuse_nul``)."""
    try:
        raw = await read_limited(request, BODY_LIMIT)
    except TooLarge:
        raise ApiError(f"body too large (at most {BODY_LIMIT} bytes)", status=413) from None
    if request.content_type in TOML_TYPES:
        try:
            data = parse_toml(raw, "body")
        except ConfigError as exc:
            raise ApiError(exc.problem) from None
        refuse_nul(data)
        return data, raw.decode("utf-8")
    if request.content_type != "application/json":
        raise ApiError("send JSON (application/json) or TOML (application/toml)", status=415)
    if not raw.strip():
        return {}, None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(f"body is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise ApiError("body must be a JSON object")
    refuse_nul(data)
    return data, None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id of the path (``service.web.params.path_id``: ASCII digits within a
    bigint); anything else is a 404 that says why."""
    return strict_path_id(request, name)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def audit(
    request: web.Request, action: str, target: str, detail: Mapping[str, object] | None = None
) -> None:
    kept = dict(detail) if detail is not None else None
    await accounts.audit(
        request.app[DB_POOL], principal(request).label, action, target, kept, request.remote
    )


def service_names(request: web.Request) -> dict[str, str]:
    return {s.slug: s.name for s in request.app[SETTINGS].municipality.services}


def evaluator_names(spec: Mapping[str, Any]) -> dict[str, str]:
    return {e["email"]: e["name"] for e in spec["evaluators"]}
