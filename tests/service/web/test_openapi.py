"""The OpenAPI document (issue 24): every route has its entry and every entry its route, the
roles it states are the ones ``service/web/access.py`` applies, it is valid OpenAPI 3.1, and
it is served as stored at ``/api/v1/openapi.json`` to anyone."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from service.accounts.model import Principal, Role
from service.app import create_app
from service.web.access import allowed, rule_for
from service.web.openapi import DOCUMENT, PATH
from tests.conftest import make_settings

METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")
ROLES = ("anonymous", "wall", "viewer", "quality", "admin")
# Who each role name stands for, as the access rules see them.
REQUESTERS: dict[str, Principal | None] = {
    "anonymous": None,
    "wall": Principal("wall", None, token_id=1),
    "viewer": Principal("token", Role.VIEWER, user_id=1),
    "quality": Principal("token", Role.QUALITY, user_id=1),
    "admin": Principal("token", Role.ADMIN, user_id=1),
}
# Routes that access.py opens wider than their handler: the document states the handler's
# narrower requirement (and says so in the description).
NARROWED_BY_HANDLER = {
    ("POST", "/api/v1/callbacks/{id}/done"),
    ("POST", "/api/v1/mystery-calls/{id}/missed"),
}
# /metrics is gated by its own token (DECROCHE_METRICS_TOKEN), not by the access rules.
OWN_GATE = {("GET", "/metrics")}


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DOCUMENT.read_text("utf-8"))
    return doc


def documented() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in load()["paths"].items()
        for method in item
        if method in METHODS
    }


def routed(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route of the real application; a GET's automatic HEAD is
    the GET's; a static directory is ``{prefix}/{file}``."""
    app = create_app(make_settings("postgresql://unused@127.0.0.1/unused", tmp_path))
    found: set[tuple[str, str]] = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        path = resource.canonical
        if isinstance(resource, web.StaticResource):
            path = path.rstrip("/") + "/{file}"
        found.add((route.method, path))
    heads = {(m, p) for m, p in found if m == "HEAD"}
    assert {("GET", p) for _, p in heads} <= found, "a HEAD route without its GET"
    return found - heads


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in load()["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_route_has_its_entry_and_every_entry_its_route(tmp_path: Path) -> None:
    routes, entries = routed(tmp_path), documented()
    assert sorted(routes - entries) == [], "routes without an entry in service/web/openapi.json"
    assert sorted(entries - routes) == [], "entries of service/web/openapi.json without a route"


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = load()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)


def _concrete(path: str) -> str:
    """A path the access rules can be asked about (``{id}`` → ``1``)."""
    return re.sub(r"\{[^}]+\}", "1", path)


def _access_roles(path: str) -> list[str]:
    rule = rule_for(_concrete(path))
    return [name for name in ROLES if allowed(rule, REQUESTERS[name])]


@pytest.mark.parametrize(("method", "path", "op"), operations(), ids=lambda v: str(v)[:60])
def test_each_operation_states_the_roles_access_py_applies(
    method: str, path: str, op: dict[str, Any]
) -> None:
    stated = op["x-decroche-roles"]
    assert stated, "x-decroche-roles is empty"
    assert set(stated) <= set(ROLES)
    assert list(stated) == [r for r in ROLES if r in stated], "roles in the order of ROLES"
    expected = _access_roles(path)
    if (method, path) in OWN_GATE:
        assert stated == list(ROLES)
    elif (method, path) in NARROWED_BY_HANDLER:
        assert set(stated) < set(expected), "a narrowed route must state fewer roles"
    else:
        assert stated == expected
    # A sentence of the description says it too, for those who read no extension.
    assert re.search(
        r"(Open to anyone|Needs the \w+ role|Needs a viewer account)", op["description"]
    )


@pytest.mark.parametrize(("method", "path", "op"), operations(), ids=lambda v: str(v)[:60])
def test_each_operation_documents_its_answers(method: str, path: str, op: dict[str, Any]) -> None:
    responses = op["responses"]
    assert any(code.startswith("2") or code == "303" for code in responses), "no success"
    assert "default" not in responses, "every status is named"
    if op["x-decroche-roles"] != list(ROLES) and path.startswith("/api/"):
        assert {"401", "403"} <= set(responses)
    if "{id}" in path:
        assert "404" in responses
    params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
    assert params == set(re.findall(r"\{([^}]+)\}", path))


async def test_the_document_is_served_to_anyone(anonymous: Any) -> None:
    async with anonymous.get(PATH) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert "X-Request-Id" in resp.headers
        assert await resp.json() == load()
