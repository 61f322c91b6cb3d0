"""Accounts and tokens over the API: ``/api/v1/me``, ``/tokens``, ``/users``, ``/wall-tokens``,
``/audit``. A token's secret is shown once, when it is created; only its hash is kept."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.model import Principal, Role, normalise_email, parse_role
from service.keys import DB_POOL, SETTINGS
from service.web.auth import principal
from service.web.bodies import read_json_object, text_field
from service.web.cookies import csrf_token
from service.web.errors import ApiError
from service.web.params import path_id

SETUP_LINK_VALIDITY = timedelta(days=3)


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def _token_json(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": r["id"],
        "name": r["name"],
        "prefix": r["prefix"],
        "owner": r["owner"],
        "created_at": _iso(r["created_at"]),
        "last_used_at": _iso(r["last_used_at"]),
        "revoked_at": _iso(r["revoked_at"]),
    }


def setup_link(request: web.Request, token: str) -> str:
    settings = request.app[SETTINGS]
    base = settings.public_url or f"{request.scheme}://{request.host}"
    return f"{base}/connexion/activer?jeton={token}"


async def me(request: web.Request) -> web.Response:
    who = principal(request)
    body: dict[str, Any] = {"kind": who.kind, "email": who.email, "role": who.role}
    if who.session_hash is not None:
        body["csrf"] = csrf_token(request.app[SETTINGS].secret_key, who.session_hash)
    return web.json_response(body)


def _user_scope(who: Principal) -> int | None:
    """Whose tokens a requester manages: their own; the environment admin, everyone's."""
    return None if who.kind == "env" else who.user_id


async def list_tokens(request: web.Request) -> web.Response:
    who = principal(request)
    rows = await accounts.list_tokens(request.app[DB_POOL], "api", _user_scope(who))
    return web.json_response({"tokens": [_token_json(r) for r in rows]})


async def create_token(request: web.Request) -> web.Response:
    who = principal(request)
    name = text_field(await read_json_object(request), "name", max_len=100)
    if who.user_id is None:
        raise ApiError(
            "API tokens belong to an account: log in as a user to create one", status=403
        )
    pool = request.app[DB_POOL]
    tid, token = await accounts.create_token(pool, "api", who.user_id, name)
    await accounts.audit(pool, who.label, "token.create", f"token:{tid}", {"name": name})
    return web.json_response({"id": tid, "name": name, "token": token}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    who = principal(request)
    tid = path_id(request)
    pool = request.app[DB_POOL]
    scope = None if who.has(Role.ADMIN) else who.user_id
    if not await accounts.revoke_token(pool, tid, "api", scope):
        raise ApiError(f"no live token {tid} of yours", status=404)
    await accounts.audit(pool, who.label, "token.revoke", f"token:{tid}")
    return web.json_response({"id": tid, "revoked": True})


async def list_users(request: web.Request) -> web.Response:
    rows = await accounts.list_users(request.app[DB_POOL])
    return web.json_response(
        {
            "users": [
                {
                    "id": r["id"],
                    "email": r["email"],
                    "role": r["role"],
                    "active": r["active"],
                    "disabled_at": _iso(r["disabled_at"]),
                    "created_at": _iso(r["created_at"]),
                }
                for r in rows
            ]
        }
    )


async def create_user(request: web.Request) -> web.Response:
    who = principal(request)
    data = await read_json_object(request)
    try:
        email = normalise_email(text_field(data, "email", max_len=254))
    except ValueError as exc:
        raise ApiError(str(exc), field="email") from None
    try:
        role = parse_role(text_field(data, "role", max_len=20))
    except ValueError as exc:
        raise ApiError(str(exc), field="role") from None
    pool = request.app[DB_POOL]
    try:
        uid = await accounts.add_user(pool, email, role)
    except accounts.AccountError as exc:
        raise ApiError(str(exc), field="email", status=409) from None
    token = await accounts.new_setup_link_token(pool, uid, SETUP_LINK_VALIDITY)
    await accounts.audit(pool, who.label, "user.add", email, {"role": role.value})
    return web.json_response(
        {"id": uid, "email": email, "role": role.value, "setup_link": setup_link(request, token)},
        status=201,
    )


async def update_user(request: web.Request) -> web.Response:
    """``{"role": …}`` changes the role; ``{"disabled": true}`` disables the account and ends
    its sessions and tokens; ``{"setup_link": true}`` issues a new one-time set-up link."""
    who = principal(request)
    uid = path_id(request)
    data = await read_json_object(request)
    pool = request.app[DB_POOL]
    email = await accounts.user_email(pool, uid)
    if email is None:
        raise ApiError(f"no user {uid}", status=404)
    out: dict[str, Any] = {"id": uid, "email": email}
    if "role" in data:
        try:
            role = parse_role(text_field(data, "role", max_len=20))
        except ValueError as exc:
            raise ApiError(str(exc), field="role") from None
        await accounts.set_role(pool, uid, role)
        await accounts.audit(pool, who.label, "user.role", email, {"role": role.value})
        out["role"] = role.value
    if data.get("disabled") is True:
        await accounts.disable_user(pool, uid)
        await accounts.audit(pool, who.label, "user.disable", email)
        out["disabled"] = True
    if data.get("setup_link") is True:
        token = await accounts.new_setup_link_token(pool, uid, SETUP_LINK_VALIDITY)
        await accounts.audit(pool, who.label, "user.setup_link", email)
        out["setup_link"] = setup_link(request, token)
    if len(out) == 2:
        raise ApiError("nothing to change: give role, disabled: true or setup_link: true")
    return web.json_response(out)


async def list_wall_tokens(request: web.Request) -> web.Response:
    rows = await accounts.list_tokens(request.app[DB_POOL], "wall")
    return web.json_response({"tokens": [_token_json(r) for r in rows]})


async def create_wall_token(request: web.Request) -> web.Response:
    who = principal(request)
    name = text_field(await read_json_object(request), "name", max_len=100)
    pool = request.app[DB_POOL]
    tid, token = await accounts.create_token(pool, "wall", who.user_id, name)
    await accounts.audit(pool, who.label, "wall_token.create", f"token:{tid}", {"name": name})
    settings = request.app[SETTINGS]
    base = settings.public_url or f"{request.scheme}://{request.host}"
    return web.json_response(
        {"id": tid, "name": name, "token": token, "link": f"{base}/mur?token={token}"},
        status=201,
    )


async def revoke_wall_token(request: web.Request) -> web.Response:
    who = principal(request)
    tid = path_id(request)
    pool = request.app[DB_POOL]
    if not await accounts.revoke_token(pool, tid, "wall", None):
        raise ApiError(f"no live wall token {tid}", status=404)
    await accounts.audit(pool, who.label, "wall_token.revoke", f"token:{tid}")
    return web.json_response({"id": tid, "revoked": True})


async def audit_log(request: web.Request) -> web.Response:
    rows = await accounts.audit_entries(request.app[DB_POOL])
    return web.json_response(
        {
            "entries": [
                {
                    "id": r["id"],
                    "at": _iso(r["at"]),
                    "actor": r["actor"],
                    "action": r["action"],
                    "target": r["target"],
                    "detail": json.loads(r["detail"]) if r["detail"] else None,
                    "address": r["address"],
                }
                for r in rows
            ]
        }
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/me", me)
    r.add_get("/api/v1/tokens", list_tokens)
    r.add_post("/api/v1/tokens", create_token)
    r.add_delete("/api/v1/tokens/{id}", revoke_token)
    r.add_get("/api/v1/users", list_users)
    r.add_post("/api/v1/users", create_user)
    r.add_patch("/api/v1/users/{id}", update_user)
    r.add_get("/api/v1/wall-tokens", list_wall_tokens)
    r.add_post("/api/v1/wall-tokens", create_wall_token)
    r.add_delete("/api/v1/wall-tokens/{id}", revoke_wall_token)
    r.add_get("/api/v1/audit", audit_log)
