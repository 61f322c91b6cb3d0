"""The French pages: static HTML and assets; the figures come from the JSON API."""

from __future__ import annotations

from html import escape
from pathlib import Path

from aiohttp import web

from service.web.errors import current_request_id

WEB = Path(__file__).resolve().parent
STATIC = WEB / "static"
TEMPLATES = WEB / "templates"


def template(name: str, directory: Path = TEMPLATES) -> web.FileResponse:
    """One of the static HTML pages (their data comes from the API)."""
    return web.FileResponse(directory / name, headers={"Content-Type": "text/html; charset=utf-8"})


async def dashboard(request: web.Request) -> web.FileResponse:
    """``/``: the « tableau de bord » (Engagement 8 per service, weeks, affluence)."""
    return template("dashboard.html")


def reference_html() -> str:
    """« Référence : … », the request's id on a page that shows an error, for the user to
    quote when they report it (empty outside a request)."""
    rid = current_request_id()
    if rid is None:
        return ""
    return f'<p class="note">Référence : <code>{escape(rid)}</code></p>'


def forbidden_page() -> web.Response:
    """403 for a page the account's role does not open (French, no detail to leak)."""
    return web.Response(
        text=(
            '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
            "<title>Accès refusé — Décroché</title>"
            '<link rel="stylesheet" href="/static/style.css"></head>'
            '<body class="login"><main class="login-box"><h1>Accès refusé</h1>'
            "<p>Votre compte ne donne pas accès à cette page. Demandez à un administrateur "
            'si vous pensez que c\'est une erreur.</p><p><a href="/">Retour au tableau de bord'
            f"</a></p>{reference_html()}</main></body></html>"
        ),
        content_type="text/html",
        charset="utf-8",
        status=403,
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", dashboard)
    app.router.add_static("/static/", STATIC, name="static")
