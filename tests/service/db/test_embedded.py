"""The embedded PostgreSQL: commands in a row, two at once, a killed process — no corruption
and no server left running behind (« ghosts »)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.processes import ROOT, decroche_env, postmaster_alive, run_decroche


def test_commands_in_a_row_and_at_once_leave_no_ghost(tmp_path: Path) -> None:
    env = decroche_env(tmp_path)
    pgdata = tmp_path / "pg"
    first = run_decroche("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied: 0001_calls" in first.stdout
    assert not postmaster_alive(pgdata)

    second = run_decroche("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: run_decroche("migrate", env=env), range(3)))
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    assert not postmaster_alive(pgdata)


def test_a_killed_holder_is_forgotten_on_the_next_start(tmp_path: Path) -> None:
    env = decroche_env(tmp_path)
    pgdata = tmp_path / "pg"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from service.db.embedded import start_embedded;"
            "start_embedded(Path(sys.argv[1])); print('up', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "up"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert postmaster_alive(pgdata)  # nobody stopped it: it would be a ghost
    res = run_decroche("migrate", env=env)
    assert res.returncode == 0, res.stderr
    deadline = time.monotonic() + 10
    while postmaster_alive(pgdata) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not postmaster_alive(pgdata)


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    res = run_decroche("migrate", env=decroche_env(blocker / "data", DECROCHE_SECRET_KEY="k"))
    assert res.returncode == 1
    assert res.stderr.startswith("decroche: cannot start the embedded PostgreSQL")
    assert "Traceback" not in res.stderr
