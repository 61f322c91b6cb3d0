"""Report benchmark: the Engagement 8 query on a big table.

    python bench/report.py --database-url postgresql://postgres@127.0.0.1:5432/test
    python bench/report.py --calls 1000000        # a smaller try

Creates a fresh database ``decroche_report_bench`` on the given server (or uses an embedded
PostgreSQL when no URL is given), migrates it, fills ``calls`` with ``--calls`` calls over
two years for 50 services (generated inside PostgreSQL: mostly in opening hours, a few
closed-hours calls, realistic waits and abandons), then times ``engagement8`` — exactly what
``GET /api/v1/engagement8`` runs — for one week and one year, all services.

``--only-measured`` fills only the calls of the year measured (the week is inside it): the
same calls, at the same density, without the history around them — the « empty database »
the full one is compared with. Both timed in turns, which is the fair comparison on a
shared machine:

    python bench/report.py --database-url … --only-measured --name decroche_report_base
    python bench/report.py --database-url … --baseline decroche_report_base
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, datetime
from datetime import time as clock
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVICES = 50
FIRST_DAY = date(2025, 1, 6)  # a Monday; two years of data follow

FILL = """
-- Calls are generated in time order, as ingestion appends them.
INSERT INTO calls (month, source, external_id, direction, line, queue, caller_hash,
                   caller_last2, agent, started_at, answered_at, ended_at, wait_s, answered,
                   disposition, time_from_events)
SELECT date_trunc('month', s.started_at AT TIME ZONE 'UTC')::date, 'bench', 'B' || g,
       'inbound', '+3310000' || lpad((g % $3)::text, 4, '0'), NULL,
       md5((g % 200000)::text), lpad((g % 100)::text, 2, '0'), 'poste-' || (g % 40),
       s.started_at,
       CASE WHEN s.answered THEN s.started_at + make_interval(secs => s.wait) END,
       s.started_at + make_interval(secs => s.wait + CASE WHEN s.answered THEN 180 ELSE 0 END),
       s.wait, s.answered, CASE WHEN s.answered THEN 'answered' ELSE 'abandoned' END, true
FROM generate_series($1::bigint, $2::bigint) AS g,
LATERAL (
    SELECT ($5::timestamp + make_interval(days => (g * 730 / $4)::int)
            + make_interval(secs => (random() * 36000)::int)) AT TIME ZONE 'Europe/Paris'
               AS started_at,
           random() < 0.86 AS answered,
           floor(-ln(1 - random()) * 18)::float8 AS wait
) AS s
"""


def municipality_toml(services: int) -> str:
    out = ['name = "Métropole de Banc-d\'Essai"', 'timezone = "Europe/Paris"']
    for i in range(services):
        out += [
            "[[services]]",
            f'slug = "service-{i:02d}"',
            f'name = "Service {i:02d}"',
            f'lines = ["+3310000{i:04d}"]',
            "[services.hours]",
        ]
        for day in ("mon", "tue", "wed", "thu", "fri"):
            out.append(f'{day} = ["08:30-12:00", "13:30-17:30"]')
        if i % 3 == 0:
            out.append('sat = ["09:00-12:00"]')
    return "\n".join(out) + "\n"


async def fill(
    pool: object,
    calls: int,
    only: tuple[int, int] | None = None,
    first_day: date = FIRST_DAY,
) -> None:
    """``calls`` calls over the two years from ``first_day``; with ``only``, just the calls
    numbered in that range (the same calls, at the same density: a database holding only
    those days)."""
    from tqdm import tqdm

    step = 500_000
    # Secondary indexes are dropped during the fill and rebuilt after: a bulk build is much
    # faster than maintaining them row by row.
    secondary = await pool.fetch(  # type: ignore[attr-defined]
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'calls' "
        "AND indexname NOT IN ('calls_pkey', 'calls_source_external_id_key')"
    )
    for r in secondary:
        await pool.execute(f'DROP INDEX "{r["indexname"]}"')  # type: ignore[attr-defined]
    await pool.execute(  # type: ignore[attr-defined]
        "SELECT ensure_month_partitions(ARRAY(SELECT d::date FROM generate_series("
        "date_trunc('month', $1::date), $1::date + 731, interval '1 month') AS d))",
        first_day,
    )
    first, last = only or (1, calls)
    with tqdm(total=last - first + 1, unit="call", desc="filling") as bar:
        for lo in range(first, last + 1, step):
            hi = min(last, lo + step - 1)
            await pool.execute(  # type: ignore[attr-defined]
                FILL, lo, hi, SERVICES, calls, datetime.combine(first_day, clock(7, 30))
            )
            bar.update(hi - lo + 1)
    # Every call's month, as ingestion registers it (the table writers look calls up in).
    await pool.execute(  # type: ignore[attr-defined]
        "INSERT INTO call_keys (source, call_key, month) SELECT source, external_id, month "
        "FROM calls"
    )
    for r in secondary:
        # A partitioned table's index reads « ON ONLY calls » in pg_indexes: made that way it
        # would be the parent's alone, and no month would have it.
        indexdef = r["indexdef"].replace(" ON ONLY ", " ON ")
        await pool.execute(indexdef)  # type: ignore[attr-defined]
    await pool.execute("VACUUM ANALYZE calls, call_keys")  # type: ignore[attr-defined]


FILL_EVENTS = """
-- One compact event per call (the service stores about eight, with the payloads Twilio
-- sent): enough for the unique index writers check, at a fraction of the disk.
INSERT INTO events (month, source, call_key, dedup_key, kind, occurred_at, received_at, norm,
                    payload)
SELECT month, source, external_id, 'completed', 'status', ended_at, ended_at, '{}', '{}'
FROM calls WHERE id BETWEEN $1 AND $2
"""


async def fill_events(pool: object, calls: int) -> None:
    """An event per call already filled (in id ranges: the transactions stay small)."""
    from tqdm import tqdm

    step = 1_000_000
    with tqdm(total=calls, unit="event", desc="events") as bar:
        for lo in range(1, calls + 1, step):
            hi = min(calls, lo + step - 1)
            await pool.execute(FILL_EVENTS, lo, hi)  # type: ignore[attr-defined]
            bar.update(hi - lo + 1)
    await pool.execute("VACUUM ANALYZE events")  # type: ignore[attr-defined]


async def main_async(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from bench.databases import fresh_database
    from service.db.migrate import apply_migrations
    from service.db.pool import create_pool
    from service.metrics.report import engagement8
    from service.metrics.rollup import refresh, span_days
    from service.municipality.model import load_municipality

    cfg = Path(tempfile.mkdtemp(prefix="decroche-report-")) / "bench.toml"
    cfg.write_text(municipality_toml(SERVICES), encoding="utf-8")
    m = load_municipality(cfg)
    if args.reuse:
        if args.database_url is None:
            raise SystemExit("--reuse needs --database-url")
        dsn = with_database(args.database_url, args.name)
        pool = await create_pool(dsn, max_size=4, command_timeout=None)
    else:
        dsn = await fresh_database(
            args.database_url, args.name, Path(tempfile.mkdtemp(prefix="decroche-report-db-"))
        )
        pool = await create_pool(dsn, max_size=4, command_timeout=None)
        async with pool.acquire() as conn:
            await apply_migrations(conn)
        t0 = time.perf_counter()
        only = None
        if args.only_measured:
            # Call g starts on day g * 730 / calls after FIRST_DAY: the year measured is days
            # 176 (2025-07-01) to 540 (2026-06-30).
            n = args.calls
            only = (-(-176 * n // 730), (541 * n - 1) // 730)
        await fill(pool, args.calls, only)
        filled = only[1] - only[0] + 1 if only else args.calls
        print(f"filled {filled:,} calls in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        with tqdm(total=await span_days(pool, m), unit="day", desc="rollup") as bar:
            days = await refresh(pool, m, wait=True, on_round=bar.update)
        rows = await pool.fetchval("SELECT count(*) FROM call_rollup")
        print(
            f"built the daily rollup of {days:,} days ({rows:,} rows) in "
            f"{time.perf_counter() - t0:.0f} s"
        )
    # Timed in turns with the baseline's database, if any: on a shared machine, runs made
    # minutes apart differ by more than the databases do (caches, autovacuum, neighbours).
    pools = {args.name: pool}
    if args.baseline:
        assert args.database_url is not None, "--baseline needs --database-url"
        base = with_database(args.database_url, args.baseline)
        pools[args.baseline] = await create_pool(base, max_size=4, command_timeout=None)
    periods = {
        "one week": (date(2026, 6, 1), date(2026, 6, 7)),
        "one year": (date(2025, 7, 1), date(2026, 6, 30)),
    }
    times: dict[tuple[str, str], list[float]] = {(n, p): [] for n in pools for p in periods}
    received: dict[tuple[str, str], int] = {}
    for _ in range(args.repeat):
        for period, (first, last) in periods.items():
            for name, p in pools.items():
                t = time.perf_counter()
                report = await engagement8(p, m, first, last)
                times[(name, period)].append(time.perf_counter() - t)
                received[(name, period)] = report["total"]["received"]
    for (name, period), ts in times.items():
        print(
            f"{name}: engagement8, {period}, all {SERVICES} services: median "
            f"{1000 * statistics.median(ts):.0f} ms (min {1000 * min(ts):.0f}, "
            f"max {1000 * max(ts):.0f}; {received[(name, period)]:,} calls)"
        )
    if args.baseline:
        for period in periods:
            ratio = statistics.median(times[(args.name, period)]) / statistics.median(
                times[(args.baseline, period)]
            )
            print(f"{period}: {100 * (ratio - 1):+.0f} % against {args.baseline}")
    for p in pools.values():
        await p.close()


def with_database(server_url: str, name: str) -> str:
    p = urlsplit(server_url)
    return urlunsplit((p.scheme, p.netloc, f"/{name}", p.query, ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--database-url")
    ap.add_argument("--name", default="decroche_report_bench", help="the database's name")
    ap.add_argument(
        "--reuse", action="store_true", help="time the database --name as it is (no fill)"
    )
    ap.add_argument(
        "--baseline",
        metavar="NAME",
        help="also time this database (made with --only-measured --name NAME), in turns",
    )
    ap.add_argument(
        "--only-measured",
        action="store_true",
        help="fill only the calls of the year measured (the same ones, at the same density): "
        "the baseline the full database's figures are compared with",
    )
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
