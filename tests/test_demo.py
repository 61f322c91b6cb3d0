"""The newcomer's first command: ``decroche serve --demo`` on the embedded database."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.processes import ROOT, decroche_env, postmaster_alive


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback only)
        return json.loads(resp.read())


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
    try:
        calls: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                calls = get_json(f"{base}/api/v1/calls?limit=200&direction=all")["calls"]
            except OSError:
                calls = []
            if sum(c["ended_at"] is not None for c in calls) >= 5:
                break
            time.sleep(1)
        finished = [c for c in calls if c["ended_at"] is not None]
        assert len(finished) >= 5, "the demo switchboard fed no calls"
        assert get_json(f"{base}/healthz") == {"status": "ok"}
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
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "Traceback" not in out
    assert not postmaster_alive(tmp_path / "pg")
