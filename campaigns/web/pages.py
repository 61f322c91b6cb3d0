"""The French pages of campaigns: static HTML and scripts; the data comes from the API.

``/campagnes`` (list, and a campaign created from its file), ``/campagnes/{id}`` (its plan
as a calendar), ``/campagnes/{id}/resultats`` (results with charts), ``/appels-mysteres/{id}``
(the scoring page of one call) and ``/mes-appels`` (an evaluator's own calls).
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from service.web.pages import template
from service.web.params import path_id

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"


def _page(name: str) -> web.FileResponse:
    return template(name, TEMPLATES)


async def campaigns_page(_: web.Request) -> web.FileResponse:
    return _page("campaigns.html")


async def campaign_page(request: web.Request) -> web.FileResponse:
    path_id(request)  # ASCII digits within a bigint, or 404
    return _page("campaign.html")


async def results_page(request: web.Request) -> web.FileResponse:
    path_id(request)  # ASCII digits within a bigint, or 404
    return _page("results.html")


async def evaluation_page(request: web.Request) -> web.FileResponse:
    path_id(request)  # ASCII digits within a bigint, or 404
    return _page("evaluation.html")


async def my_calls_page(_: web.Request) -> web.FileResponse:
    return _page("my_calls.html")


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/campagnes", campaigns_page)
    app.router.add_get("/campagnes/{id}", campaign_page)
    app.router.add_get("/campagnes/{id}/resultats", results_page)
    app.router.add_get("/appels-mysteres/{id}", evaluation_page)
    app.router.add_get("/mes-appels", my_calls_page)
    app.router.add_static("/static/campagnes/", WEB / "static", name="campaign-static")
