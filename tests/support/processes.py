"""Running the real ``decroche`` command in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def decroche_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "DECROCHE_CONFIG",
            "TWILIO_AUTH_TOKEN",
            "DECROCHE_ADMIN_TOKEN",
            "DECROCHE_PUBLIC_URL",
        )
    }
    env["DECROCHE_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_decroche(
    *args: str, env: dict[str, str], timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )


def postmaster_alive(pgdata: Path) -> bool:
    """Whether a PostgreSQL server is running on ``pgdata``."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
