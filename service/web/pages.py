"""The French pages: static HTML and assets; the figures come from the JSON API."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"


async def dashboard(request: web.Request) -> web.FileResponse:
    """``/``: the « tableau de bord » (Engagement 8 per service, weeks, affluence)."""
    return web.FileResponse(
        TEMPLATES / "dashboard.html", headers={"Content-Type": "text/html; charset=utf-8"}
    )


def setup_pages(app: web.Application) -> None:
    app.router.add_get("/", dashboard)
    app.router.add_static("/static/", STATIC, name="static")
