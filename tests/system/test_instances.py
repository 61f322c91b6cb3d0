"""Several ``decroche serve`` processes on one PostgreSQL, behind a reverse proxy: Twilio's
signatures checked against ``DECROCHE_PUBLIC_URL`` whatever instance answers, and every
wall fed by calls that any instance received (LISTEN/NOTIFY)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from tests.conftest import ADMIN_HEADERS, AUTH_TOKEN
from tests.service.wall.test_wall import call, open_stream, tile
from tests.support.cluster import Cluster
from tests.support.instances import Instance, TwilioSender
from tests.support.reverse_proxy import ReverseProxy
from tests.system.test_faults import cluster as cluster
from tests.system.test_faults import service_env, some_calls, stored_as_truth

PUBLIC = "https://decroche.ville.test"  # what Twilio is told; the proxy is its only door


async def test_two_instances_behind_a_proxy(tmp_path: Path, cluster: Cluster) -> None:
    env = service_env(tmp_path, cluster, DECROCHE_PUBLIC_URL=PUBLIC)
    a, b = (Instance(env, tmp_path / f"{n}.log").wait_healthy() for n in "ab")
    proxy = ReverseProxy([a.base, b.base])
    front = TestServer(proxy.app(), host="127.0.0.1")
    await front.start_server()
    door = f"http://127.0.0.1:{front.port}"
    try:
        # Signed over the public URL, posted to the proxy, answered by either instance.
        calls = some_calls(30, seed=6)
        sender = TwilioSender([door], AUTH_TOKEN, public_url=PUBLIC)
        await sender.deliver_calls(calls)
        assert set(sender.attempts) == {"200"}, sender.attempts
        assert min(proxy.served.values()) > 0  # both instances took some
        await stored_as_truth(cluster.dsn, calls)

        extra = some_calls(31, seed=6)[-1].callbacks[0][1]
        async with aiohttp.ClientSession() as session:
            # The URL an instance sees is not the one Twilio signed: only the public one counts.
            wrong = TwilioSender([door], AUTH_TOKEN, public_url=a.base)
            status, text = await wrong.post_once(session, extra)
            assert status == 403, text
            assert "DECROCHE_PUBLIC_URL" in text
            forged = TwilioSender([door], "not-the-auth-token", public_url=PUBLIC)
            assert (await forged.post_once(session, extra))[0] == 403

            # The wall of instance A shows a caller who rang through instance B.
            stream = await open_stream(session, f"{a.base}/api/v1/wall/stream")
            await stream.next()
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
            waiting = call(9001, start)
            only_b = TwilioSender([b.base], AUTH_TOKEN, public_url=PUBLIC)
            for _, params in sorted(waiting.callbacks, key=lambda c: c[0])[:2]:
                await only_b.deliver(session, params)
            seen = await stream.until(lambda s: tile(s)["waiting"] == 1)
            assert tile(seen)["longest_wait_s"] >= 30
            stream.resp.close()
            # And through the proxy, whichever instance answers, the same caller waits.
            async with session.get(f"{door}/api/v1/wall", headers=ADMIN_HEADERS) as resp:
                assert tile(await resp.json())["waiting"] == 1
    finally:
        await front.close()
        for i in (a, b):
            i.stop()
    for i in (a, b):
        assert "Traceback" not in i.output()
