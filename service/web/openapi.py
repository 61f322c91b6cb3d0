"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of the whole HTTP surface.

The document is a file kept in the repository (``openapi.json`` beside this module, shipped
as package data); a test fails when a route exists without its entry or an entry without its
route (``tests/service/web/test_openapi.py``). It is read once and served as is, to anyone:
it describes the routes, never their data.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aiohttp import web

DOCUMENT = Path(__file__).resolve().parent / "openapi.json"
PATH = "/api/v1/openapi.json"


@cache
def document_bytes() -> bytes:
    """The document as stored (UTF-8 JSON)."""
    return DOCUMENT.read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(
        body=document_bytes(),
        content_type="application/json",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=300"},
    )
