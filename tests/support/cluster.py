"""A throwaway PostgreSQL server of the test's own, from pgserver's binaries, that the test
may stop, start and restart for real (the machine's PostgreSQL is never touched)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import warnings
from pathlib import Path


class Cluster:
    """A PostgreSQL cluster in ``pgdata`` listening on a Unix socket only."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs and XDG_RUNTIME_DIR
            from pgserver.postgres_server import get_server

        # cleanup_mode=None: the test stops and removes it itself (close()).
        self._server = get_server(pgdata, cleanup_mode=None)
        self.pgdata = pgdata
        info = self._server.get_postmaster_info()
        self.socket_dir = info.socket_dir
        self._server.psql("CREATE DATABASE decroche;")
        self.dsn = self._server.get_uri("decroche")

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import POSTGRES_BIN_PATH

        done = subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            user=self._server.system_user,  # as root, pgserver runs PostgreSQL as « pgserver »
            capture_output=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:  # say why: pg_ctl's own words, and the server's log's end
            log = self.pgdata / "log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr + tail.encode()
            )

    def stop(self) -> None:
        """Stop it as an administrator would (« fast »: sessions are cut, nothing is lost)."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"),
            "start",
        )  # fmt: skip

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)
