"""The yardstick of bench/ingest.py: a minimal Twilio webhook handler.

It checks the signature (one HMAC-SHA1) and commits each callback as one row, nothing
else: what any correct ingestion must at least do. ``bench/ingest.py --server minimal``
runs the same load against it, so Décroché's figures can be read against this machine's
ceiling rather than against a number measured elsewhere.

    python bench/minimal_server.py PORT DSN TOKEN
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import sys
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import asyncpg
import uvloop
from aiohttp import web

POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")


def main() -> None:
    port, dsn, token = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=4, max_size=64)
        assert pool is not None
        await pool.execute(
            "CREATE TABLE IF NOT EXISTS minimal_events (id bigserial PRIMARY KEY, body text)"
        )
        app[POOL] = pool
        yield
        await pool.close()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        params = dict(parse_qsl(body.decode()))
        url = f"http://{request.host}{request.raw_path}"
        payload = url + "".join(k + params[k] for k in sorted(params))
        mac = base64.b64encode(hmac.new(token, payload.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(mac, request.headers.get("X-Twilio-Signature", "")):
            return web.Response(status=403)
        await request.app[POOL].execute(
            "INSERT INTO minimal_events (body) VALUES ($1)", body.decode()
        )
        return web.Response(text="<Response/>", content_type="text/xml")

    app = web.Application()
    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/webhooks/twilio", handle)
    web.run_app(
        app, port=port, print=None, access_log=None, reuse_port=True, loop=uvloop.new_event_loop()
    )


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
