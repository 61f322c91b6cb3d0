"""Who is asking, and may they? The middleware in front of every route.

Credentials, in order: ``Authorization: Bearer`` (the ``DECROCHE_ADMIN_TOKEN`` environment
token, or a per-user API token, or a wall token); the signed session cookie of a login; on
wall routes only, ``?token=`` (a screen's link cannot carry a header). The route's rule
(``access.py``) then decides. Cookie-authenticated requests that change something must carry
the session's CSRF token (``X-CSRF-Token`` header or ``csrf`` form field); bearer requests
carry no ambient credential and need none.

Pages answer a missing login with a redirect to ``/connexion``; the API answers 401 / 403
in JSON. Every refusal is counted in ``/metrics`` by reason.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote

from aiohttp import web

from service.accounts import queries as accounts
from service.accounts.model import Principal, Role
from service.keys import DB_POOL, METRICS, SETTINGS
from service.web.access import allowed, rule_for
from service.web.cookies import SESSION_COOKIE, csrf_ok, unsign
from service.web.errors import Handler, json_error
from service.web.pages import forbidden_page

PRINCIPAL: web.RequestKey[Principal | None] = web.RequestKey("principal")
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


async def _bearer(request: web.Request, token: str) -> Principal:
    settings = request.app[SETTINGS]
    if settings.admin_token and hmac.compare_digest(
        token.encode(errors="replace"), settings.admin_token.encode()
    ):
        return Principal("env", Role.ADMIN)
    who = await accounts.token_principal(request.app[DB_POOL], token)
    if who is None:
        raise Refusal(401, "bad_token", "token not recognised (unknown, revoked or expired)")
    return who


async def identify(request: web.Request, wall_route: bool) -> Principal | None:
    """The requester, from the first credential present; a bad credential is refused."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Refusal(401, "bad_authorization", "expected 'Authorization: Bearer <token>'")
        return await _bearer(request, given.strip())
    if wall_route and "token" in request.query:
        return await _bearer(request, request.query["token"])
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        sid = unsign(request.app[SETTINGS].secret_key, cookie)
        if sid is not None:
            return await accounts.session_principal(request.app[DB_POOL], sid)
    return None


def _is_page(request: web.Request) -> bool:
    return not request.path.startswith("/api/")


def _refuse(request: web.Request, exc: Refusal) -> web.StreamResponse:
    request.app[METRICS].refuse(exc.reason)
    if _is_page(request) and exc.status == 401 and request.method == "GET":
        raise web.HTTPSeeOther(f"/connexion?suite={quote(request.path_qs, safe='')}")
    if _is_page(request) and exc.status == 403:
        return forbidden_page()
    return json_error(exc.status, exc.message)


async def _check_csrf(request: web.Request, who: Principal) -> None:
    if request.method not in UNSAFE or who.kind != "session" or who.session_hash is None:
        return
    given = request.headers.get("X-CSRF-Token")
    if given is None and request.content_type == "application/x-www-form-urlencoded":
        given = (await request.post()).get("csrf")  # type: ignore[assignment]
    if not csrf_ok(request.app[SETTINGS].secret_key, who.session_hash, given):
        raise Refusal(403, "csrf", "missing or wrong CSRF token; reload the page")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/metrics":
        return await _metrics_gate(request, handler)
    rule = rule_for(request.path)
    if rule.need is None:
        request[PRINCIPAL] = None
        return await handler(request)
    try:
        who = await identify(request, rule.wall)
        if who is None:
            raise Refusal(401, "no_credentials", "log in or send 'Authorization: Bearer <token>'")
        if not allowed(rule, who):
            raise Refusal(403, "role", f"this needs the {rule.need.value} role or higher")
        await _check_csrf(request, who)
    except Refusal as exc:
        return _refuse(request, exc)
    request[PRINCIPAL] = who
    return await handler(request)


async def _metrics_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[SETTINGS].metrics_token
    if token is None:
        return await handler(request)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        request.app[METRICS].refuse("metrics_token")
        return json_error(401, "/metrics needs 'Authorization: Bearer <DECROCHE_METRICS_TOKEN>'")
    return await handler(request)


async def still_admitted(request: web.Request) -> bool:
    """Whether the credential this request was let in with still holds (a long request, such
    as the wall's stream, asks again while it lasts): the session not ended, the token not
    revoked, the user not disabled. Requests let in without a credential always are."""
    who: Principal | None = request.get(PRINCIPAL)
    return who is None or await accounts.principal_alive(request.app[DB_POOL], who)


def principal(request: web.Request) -> Principal:
    """The requester of a route that needs one (the middleware has checked it)."""
    who: Principal | None = request.get(PRINCIPAL)
    if who is None:
        raise web.HTTPUnauthorized()
    return who
