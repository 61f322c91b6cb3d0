"""A reverse proxy in front of several instances (a real local server), as a load balancer
is: round-robin, the next instance when one cannot be reached, the Host rewritten to the
instance's own (so only ``DECROCHE_PUBLIC_URL`` can tell the service its public address),
responses streamed (the wall's server-sent events go through)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


class ReverseProxy:
    def __init__(self, upstreams: Sequence[str]) -> None:
        self.upstreams = list(upstreams)
        self._turns = itertools.cycle(range(len(self.upstreams)))
        self.served: dict[str, int] = dict.fromkeys(self.upstreams, 0)
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=8 << 20)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_read=None), auto_decompress=False
            )
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Proto"] = "https"
        last: Exception | None = None
        for _ in self.upstreams:
            upstream = self.upstreams[next(self._turns)]
            try:
                upstream_resp = await self._session.request(
                    request.method,
                    upstream + request.path_qs,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                )
            except aiohttp.ClientConnectorError as exc:  # not reached: try the next one
                last = exc
                continue
            self.served[upstream] += 1
            async with upstream_resp:
                resp = web.StreamResponse(status=upstream_resp.status)
                for k, v in upstream_resp.headers.items():
                    if k.lower() not in HOP_BY_HOP:
                        resp.headers.add(k, v)
                await resp.prepare(request)
                async for chunk in upstream_resp.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp
        return web.json_response({"error": f"no instance answers: {last}"}, status=502)
