"""Access to ``/api/v1``: a Bearer token when one is configured.

Until accounts exist (issue on accounts and roles), the only credential is the
``DECROCHE_ADMIN_TOKEN`` environment token: when it is set, every ``/api/v1`` request must
carry it; when it is unset the API is open, for a first local try-out. Webhooks are
authenticated by their signatures, ``/healthz`` and ``/metrics`` stay open.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from service.keys import METRICS, SETTINGS
from service.web.errors import Handler, json_error


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = request.app[SETTINGS].admin_token
    if token is None or not request.path.startswith("/api/"):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        request.app[METRICS].webhook("api", "refused", "missing_token")
        return json_error(401, "missing Authorization: Bearer <token> header")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        request.app[METRICS].webhook("api", "refused", "bad_token")
        return json_error(401, "token not recognised")
    return await handler(request)
