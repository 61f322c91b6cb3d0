"""The newcomer's first command: ``decroche serve --demo`` on the embedded database."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.browser_login import login_opener
from tests.support.processes import ROOT, decroche_env, postmaster_alive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(opener: urllib.request.OpenerDirector, url: str) -> Any:
    with opener.open(url, timeout=5) as resp:
        return json.loads(resp.read())


CREDENTIALS = re.compile(r"connexion : (\S+@\S+) / (\S+)")


def test_serve_demo_shows_calls_then_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "serve",
            "--demo",
            "--port",
            str(port),
            "--demo-days",
            "1",
            "--demo-rate",
            "2",
        ],
        cwd=ROOT,
        env=decroche_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    try:
        # The newcomer reads the demo account's password in the output, then logs in.
        deadline = time.monotonic() + 60
        creds = None
        while creds is None and time.monotonic() < deadline:
            creds = next((m for ln in list(lines) if (m := CREDENTIALS.search(ln))), None)
            time.sleep(0.2)
        assert creds is not None, "".join(lines)
        opener = login_opener(base, creds.group(1), creds.group(2))
        calls: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                calls = get_json(opener, f"{base}/api/v1/calls?limit=200&direction=all")["calls"]
            except OSError:
                calls = []
            if sum(c["ended_at"] is not None for c in calls) >= 5:
                break
            time.sleep(1)
        finished = [c for c in calls if c["ended_at"] is not None]
        assert len(finished) >= 5, "the demo switchboard fed no calls"
        assert get_json(opener, f"{base}/healthz") == {"status": "ok"}
        waits = [c["wait_s"] for c in finished]
        assert all(w is not None and 0 <= w < 600 for w in waits)
        assert {c["outcome"] for c in finished} <= {
            "answered",
            "abandoned",
            "no_answer",
            "busy",
            "failed",
            "closed",
        }
        # The demo campaign: created through the API, its past calls partly scored.
        campaigns: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (campaigns and campaigns[0]["done"]):
            campaigns = get_json(opener, f"{base}/api/v1/campaigns")["campaigns"]
            time.sleep(1)
        assert [c["name"] for c in campaigns] == ["Appels mystères — démonstration"]
        assert campaigns[0]["calls"] == 48
        assert 0 < campaigns[0]["done"] < 48
        results = get_json(opener, f"{base}/api/v1/campaigns/{campaigns[0]['id']}/results")
        assert results["overall"]["mean_score"] is not None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        reader.join(timeout=5)
    out = "".join(lines)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not postmaster_alive(tmp_path / "pg")
