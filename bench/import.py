"""Import benchmark: ``decroche import asterisk`` on a generated queue_log.

    python bench/import.py                          # 1,000,000 lines, embedded PostgreSQL
    python bench/import.py --lines 200000 --database-url postgresql://…

It writes a FreePBX-style ``queue_log`` of simulated days (every call's lines, members
pausing and leaving around them), then runs the real command on a fresh database
(``decroche_bench`` at ``--database-url`` / ``DATABASE_URL``, or an embedded PostgreSQL)
and prints the rate in lines per second — reading, parsing, storing every line and folding
every call, all included — the command's peak memory, and a second run of the same file
(which must change nothing).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import _fresh_database  # noqa: E402


def write_log(path: Path, lines: int) -> int:
    """A queue_log of at least ``lines`` lines (whole days); returns the calls in it."""
    from service.demo.pbx import queue_log
    from service.demo.traffic import Profile, TrafficGenerator
    from service.municipality.model import load_municipality
    from service.settings import default_config_path

    m = load_municipality(default_config_path())
    gen = TrafficGenerator(m, seed=42, profile=Profile(calls_per_open_hour=30))
    written = calls = 0
    day = date(2025, 1, 6)
    with path.open("w") as f:
        while written < lines:
            todays = gen.day(day)
            calls += len(todays)
            for line in queue_log(todays, m, seed=day.toordinal()):
                f.write(line + "\n")
                written += 1
            day += timedelta(days=1)
    return calls


def run(env: dict[str, str], path: Path) -> tuple[float, str]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "service", "import", "asterisk", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"the import failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return time.perf_counter() - start, out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="decroche-import-"))
    env = {**os.environ, "DECROCHE_DATA_DIR": str(tmp)}
    env.pop("DATABASE_URL", None)
    if args.database_url:
        env["DATABASE_URL"] = _fresh_database(args.database_url)
    where = "PostgreSQL at DATABASE_URL" if args.database_url else "embedded PostgreSQL"

    path = tmp / "queue_log"
    t = time.perf_counter()
    calls = write_log(path, args.lines)
    lines = sum(1 for _ in path.open("rb"))
    size = path.stat().st_size / 1e6
    print(
        f"generated {lines:,} lines ({size:.0f} MB, {calls:,} calls) "
        f"in {time.perf_counter() - t:.0f} s; importing into {where}"
    )
    # Created and migrated first: the timed run does not include setting up a database.
    subprocess.run(
        [sys.executable, "-m", "service", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    elapsed, summary = run(env, path)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"import: {elapsed:.1f} s = {lines / elapsed:,.0f} lines/s ({summary})")
    print(f"peak memory of the command (largest child process): {peak:.0f} MB")
    elapsed, summary = run(env, path)
    print(f"second import of the same file: {elapsed:.1f} s ({summary})")


if __name__ == "__main__":
    main()
