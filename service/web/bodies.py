"""Reading request bodies: a size limit, a content type, and a 400 that says what is wrong.

A JSON body holding a NUL character (``\\u0000``) in any string or key is refused with a 400
naming where: PostgreSQL cannot store NUL in text, and no field has a use for it.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from service.keys import METRICS
from service.web.errors import ApiError
from service.web.params import printable_name

JSON_LIMIT = 64 * 1024  # account and token requests are a few hundred bytes


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body too large (limit {limit} bytes)")
        self.limit = limit


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body; :class:`TooLarge` past ``limit`` bytes (declared or sent).

    ``StreamReader.read(n)`` returns what has arrived so far: a body split across TCP
    packets would be cut short (and its signature then fail), so this reads to the end."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise TooLarge(limit)


async def read_json_object(request: web.Request, limit: int = JSON_LIMIT) -> dict[str, Any]:
    """The body as a JSON object, or an ``ApiError`` (counted in ``/metrics``)."""
    metrics = request.app[METRICS]
    if request.content_type != "application/json":
        metrics.refuse("unreadable_body")
        raise ApiError("send a JSON object with Content-Type: application/json", status=415)
    try:
        raw = await read_limited(request, limit)
    except TooLarge:
        metrics.refuse("too_large")
        raise ApiError(f"body too large (at most {limit} bytes)", status=413) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        metrics.refuse("unreadable_body")
        raise ApiError(f"body is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        metrics.refuse("unreadable_body")
        raise ApiError("body must be a JSON object")
    try:
        refuse_nul(data)
    except ApiError:
        metrics.refuse("unreadable_body")
        raise
    return data


def nul_field(value: Any, at: str = "") -> str | None:
    """Where the first NUL character in a decoded body is (``targets[0].service``; a key
    holding one is shown escaped), or None when there is none."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{at}.{printable_name(str(key))}" if at else printable_name(str(key))
            if "\x00" in str(key):
                return name
            found = nul_field(item, name)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_field(item, f"{at}[{i}]")
            if found is not None:
                return found
    return None


def refuse_nul(data: dict[str, Any]) -> None:
    """A 400 naming the field of the first NUL character in ``data``, if any."""
    field = nul_field(data)
    if field is not None:
        raise ApiError(
            f"{field} contains a NUL character (\\u0000), which cannot be stored", field=field
        )


def text_field(
    data: dict[str, Any], name: str, *, required: bool = True, max_len: int = 200
) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(f"{name} must be a non-empty string", field=name)
    if len(value) > max_len:
        raise ApiError(f"{name} is too long (at most {max_len} characters)", field=name)
    return value.strip()
