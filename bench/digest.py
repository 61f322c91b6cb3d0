"""Digest benchmark: building and rendering a week's digest on a big table.

    python bench/digest.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/digest.py --calls 1000000        # a smaller try
    python bench/digest.py --database-url … --reuse   # the last run's database, not refilled

Fills a fresh database ``decroche_digest_bench`` as ``bench/report.py`` does (``--calls``
calls over two years for 50 services, generated inside PostgreSQL, the rollup built as the
service's refresher does), gives every service a head on its digest list, then times
:func:`build_digest` for one week — the four weeks of Engagement 8 figures, the half-hours,
the open call-backs — and the rendering of every recipient's message (charts, HTML with
CSS inlined, plain text, CSV, MIME). The issue 9 target: the build under 5 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import SERVICES, fill, municipality_toml  # noqa: E402

DB_NAME = "decroche_digest_bench"


def digest_toml(services: int) -> str:
    """The report benchmark's town with a global list and one head per service."""
    text = municipality_toml(services)
    for i in range(services):
        text = text.replace(
            f'lines = ["+3310000{i:04d}"]\n',
            f'lines = ["+3310000{i:04d}"]\n'
            f'[services.digest]\nrecipients = ["chef-{i:02d}@metropole.test"]\n',
        )
    return text + '[digest]\nrecipients = ["dgs@metropole.test", "maire@metropole.test"]\n'


def ms(values: list[float]) -> str:
    return (
        f"median {1000 * statistics.median(values):.0f} ms "
        f"(min {1000 * min(values):.0f}, max {1000 * max(values):.0f})"
    )


async def main_async(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from bench.databases import fresh_database
    from service.db.migrate import apply_migrations
    from service.db.pool import create_pool
    from service.digest.build import build_digest
    from service.digest.delivery import recipients
    from service.digest.message import Charts, build_message
    from service.digest.weeks import IsoWeek
    from service.metrics.rollup import refresh, span_days
    from service.municipality.model import load_municipality

    cfg = Path(tempfile.mkdtemp(prefix="decroche-digest-")) / "bench.toml"
    cfg.write_text(digest_toml(SERVICES), encoding="utf-8")
    m = load_municipality(cfg)
    if args.reuse and args.database_url:
        base = args.database_url.rsplit("/", 1)[0]
        dsn = f"{base}/{DB_NAME}"
    else:
        dsn = await fresh_database(
            args.database_url, DB_NAME, Path(tempfile.mkdtemp(prefix="decroche-digest-db-"))
        )
    pool = await create_pool(dsn, max_size=8, command_timeout=None)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    have = await pool.fetchval("SELECT count(*) FROM calls")
    if have < args.calls:
        t0 = time.perf_counter()
        await fill(pool, args.calls)
        print(f"filled {args.calls:,} calls in {time.perf_counter() - t0:.0f} s")
    else:
        print(f"reusing {have:,} calls")
    t0 = time.perf_counter()
    with tqdm(total=await span_days(pool, m), unit="day", desc="rollup") as bar:
        await refresh(pool, m, wait=True, on_round=bar.update)
    print(f"rollup ready in {time.perf_counter() - t0:.0f} s")

    # 7–13 December 2026, sent on Monday 14 at 07:30 (the call-backs open then).
    week = IsoWeek(2026, 50)
    now = datetime(2026, 12, 14, 6, 30, tzinfo=UTC)
    builds = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        digest = await build_digest(pool, m, week, now=now)
        builds.append(time.perf_counter() - t)
    received = digest.total.figures["received"]
    print(
        f"build_digest {week}, {SERVICES} services: {ms(builds)}; "
        f"{received:,} calls that week, "
        f"{sum(len(s.worst) for s in digest.services)} worst half-hours"
    )

    to = recipients(m)
    t = time.perf_counter()
    charts = Charts(digest)
    sizes, html_sizes, renders = [], [], []
    for address, focus in tqdm(to.items(), unit="message", desc="rendering"):
        r = time.perf_counter()
        message = build_message(digest, address, focus, charts.for_recipient(focus))
        sizes.append(len(message.as_bytes()))
        html_part = next(p for p in message.walk() if p.get_content_type() == "text/html")
        html_sizes.append(len(html_part.get_payload(decode=True)))
        renders.append(time.perf_counter() - r)
    total = time.perf_counter() - t
    print(
        f"rendered {len(to)} messages in {total:.1f} s (per message {ms(renders)}; "
        f"{statistics.median(sizes) / 1024:.0f} KiB each, median; HTML part at most "
        f"{max(html_sizes) / 1000:.0f} kB)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")
    await pool.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--database-url")
    ap.add_argument("--reuse", action="store_true", help="keep the calls of the last run")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
