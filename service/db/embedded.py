"""An embedded PostgreSQL, started from the pip-installed ``pgserver`` package.

Used when no ``DATABASE_URL`` is set. The cluster lives in ``DECROCHE_DATA_DIR/pg``; it
listens on a Unix socket only (no port to collide with). Several processes may share it:
pgserver counts the processes holding a handle and the last one to exit stops the server.
A process killed with SIGKILL cannot unregister itself, so before each start the handle list
is pruned of dead processes — otherwise the server would outlive everyone as a ghost.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from service.db import queries as q

log = logging.getLogger(__name__)

DATABASE = "decroche"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not start; the message says why and what to do."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    pgdata: Path
    dsn: str


def _prune_dead_handles(pgdata: Path) -> None:
    path = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [p for p in pids if isinstance(p, int) and _alive(p)]
    if alive != pids:
        log.info("embedded PostgreSQL: forgetting %d exited process(es)", len(pids) - len(alive))
        path.write_text(json.dumps(alive))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_embedded(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded PostgreSQL in ``data_dir`` and return its DSN.

    Blocking (initdb takes a second or two the first time); call it from a thread.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import PostgresServer, get_server

    pgdata = (data_dir / "pg").resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with PostgresServer._lock:
            if pgdata.exists():
                _prune_dead_handles(pgdata)
        server = get_server(pgdata, cleanup_mode="stop")
        if DATABASE not in server.psql(q.EMBEDDED_DATABASES):
            server.psql(q.create_database(DATABASE))
        return EmbeddedPostgres(pgdata=pgdata, dsn=server.get_uri(DATABASE))
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise EmbeddedDatabaseError(
                f"the disk holding {data_dir} is full: free some space or set "
                "DECROCHE_DATA_DIR to another disk"
            ) from None
        raise EmbeddedDatabaseError(
            f"cannot start the embedded PostgreSQL in {pgdata} ({exc}); "
            "check DECROCHE_DATA_DIR or set DATABASE_URL"
        ) from None
    except Exception as exc:
        log_path = pgdata / "log"
        tail = ""
        if log_path.exists():
            tail = " | ".join(log_path.read_text(errors="replace").splitlines()[-3:])
        if "No space left" in tail:
            raise EmbeddedDatabaseError(
                f"the disk holding {data_dir} is full: free some space or set "
                "DECROCHE_DATA_DIR to another disk"
            ) from None
        raise EmbeddedDatabaseError(
            f"cannot start the embedded PostgreSQL in {pgdata} ({type(exc).__name__}: {exc}); "
            f"its log says: {tail or 'nothing'}"
        ) from None
