"""``POST /api/v1/privacy/erase``: erase one caller's data on request (admin only)."""

from __future__ import annotations

from aiohttp import web

from service.accounts import queries as accounts
from service.keys import DB_POOL, FOLDER, SETTINGS, TWILIO
from service.privacy import Pseudonymiser
from service.privacy.erasure import ErasureRefused, erase_caller
from service.web.auth import principal
from service.web.bodies import read_json_object, text_field
from service.web.errors import ApiError


async def post_erase(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    number = text_field(body, "number", max_len=40)
    settings = request.app[SETTINGS]
    pool = request.app[DB_POOL]
    await request.app[FOLDER].catch_up()
    try:
        done = await erase_caller(
            pool, Pseudonymiser(settings.secret_key), request.app[TWILIO], number
        )
    except ErasureRefused as exc:
        # Not the client's fault when Twilio is down: 503 asks to try again.
        if exc.retry:
            raise ApiError(str(exc), status=503) from None
        raise ApiError(str(exc), field="number") from None
    # The number itself is not logged: the audit log must not keep what was erased.
    await accounts.audit(
        pool, principal(request).label, "privacy.erase", None, done.as_json(), request.remote
    )
    return web.json_response(done.as_json())


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/privacy/erase", post_erase)
