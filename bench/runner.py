"""Campaign runner benchmark: the scheduler's round over thousands of planned calls.

    python bench/runner.py [--database-url postgresql://postgres@127.0.0.1:5432/test]

Creates a fresh database ``decroche_runner_bench`` on the given server (or an embedded
one), stores ``--campaigns`` manual campaigns of ``--calls`` calls each over 13 weeks for
the shipped example town, then replays one week of rounds every 5 minutes with an
injected clock, the call sheets and morning summaries going to a local aiosmtpd server
(the test extras: ``pip install -e '.[test]'``). Prints the latency of a round (median,
95th percentile, max) with and without mail to send, the e-mails sent per second, and the
process's peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm

from bench.databases import fresh_database
from campaigns import flows
from campaigns.run.runner import CampaignRunner
from service.db.migrate import apply_migrations
from service.db.pool import create_pool
from service.municipality.calendar import Calendar
from service.outside.mail import mailer_for
from service.settings import REPO_CONFIG, load_settings
from tests.support.smtp import Inbox, smtp_server

START = date(2027, 4, 5)  # a Monday


def campaign(i: int, calls: int, services: list[str]) -> dict[str, Any]:
    per, extra = divmod(calls, len(services))
    return {
        "name": f"Banc d'essai {i}",
        "grid": "accueil-telephonique",
        "starts_on": START.isoformat(),
        "ends_on": (START + timedelta(weeks=13) - timedelta(days=1)).isoformat(),
        "seed": i,
        "min_gap_minutes": 60,
        "targets": [
            {"service": s, "calls": per + (1 if k < extra else 0)} for k, s in enumerate(services)
        ],
        "evaluators": [
            {"name": f"Évaluateur {i}-{k}", "email": f"eval{i}-{k}@example.org"} for k in range(6)
        ],
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="decroche-runner-"))
    dsn = await fresh_database(args.database_url, "decroche_runner_bench", tmp / "db")
    settings = load_settings(REPO_CONFIG, {"DECROCHE_DATA_DIR": str(tmp), "DATABASE_URL": dsn})
    pool = await create_pool(dsn, max_size=4, command_timeout=None)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    services = [s.slug for s in settings.municipality.services if not s.slug.startswith("astr")]
    cal = Calendar(settings.municipality)
    for i in tqdm(range(args.campaigns), desc="campaigns", unit="campaign"):
        data = campaign(i, args.calls, services)
        await flows.create(pool, settings, cal, data, origin="bench", source=None, actor="bench")
    await pool.execute("UPDATE campaigns SET created_at = '2027-01-01T00:00:00Z'")
    total = await pool.fetchval("SELECT count(*) FROM mystery_calls")
    inbox = Inbox()
    clock_now = [datetime.combine(START, datetime.min.time(), UTC)]
    with smtp_server(inbox) as url:
        runner = CampaignRunner(
            pool,
            settings,
            mailer_for(settings.with_overrides(smtp_url=url, mail_from="bench@example.org")),
            clock=lambda: clock_now[0],
        )
        quiet, busy = [], []
        t_mail = 0.0
        steps = 7 * 24 * 12
        for _ in tqdm(range(steps), desc="rounds", unit="round"):
            before = len(inbox.messages)
            t0 = time.perf_counter()
            await runner.tick()
            spent = time.perf_counter() - t0
            if len(inbox.messages) > before:
                busy.append(spent)
                t_mail += spent
            else:
                quiet.append(spent)
            clock_now[0] += timedelta(minutes=5)
    await pool.close()
    sent = len(inbox.messages)
    print(f"{total:,} planned calls in {args.campaigns} campaigns; one week of rounds every 5 min")
    for name, values in (("nothing due", quiet), ("with mail", busy)):
        if values:
            print(
                f"round, {name}: median {1000 * statistics.median(values):.1f} ms, "
                f"p95 {1000 * percentile(values, 0.95):.1f} ms, max {1000 * max(values):.1f} ms "
                f"({len(values)} rounds)"
            )
    if t_mail:
        print(f"e-mails: {sent:,} sent (sheets and summaries), {sent / t_mail:.0f} a second")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS): {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url")
    ap.add_argument("--campaigns", type=int, default=20)
    ap.add_argument("--calls", type=int, default=500)
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
