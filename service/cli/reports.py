"""``decroche report engagement8``, ``rollup`` and ``refold``: the figures and what they read."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from service.cli.support import UserError, with_config
from service.cli.support import day as _day
from service.cli.support import settings_of as _settings
from service.cli.support import with_database as _with_database

if TYPE_CHECKING:
    import asyncpg

    from service.db.migrate import Migration
    from service.metrics.model import Engagement8Report


def cmd_report_engagement8(args: argparse.Namespace) -> int:
    """The Engagement 8 figures of a period, as a table, JSON, CSV or XLSX."""
    import json
    from pathlib import Path

    from service.calls.folder import Folder
    from service.metrics import export
    from service.metrics.report import engagement8
    from service.privacy import Pseudonymiser

    settings = _settings(args)
    m = settings.municipality
    if args.to < args.from_:
        raise UserError("--to must not be before --from")
    if args.service is not None and m.service(args.service) is None:
        known = ", ".join(s.slug for s in m.services)
        raise UserError(f"unknown service {args.service!r} (known: {known})")
    if args.format == "xlsx" and not args.output:
        raise UserError("--format xlsx needs --output FILE.xlsx")

    async def work(pool: asyncpg.Pool, _applied: list[Migration]) -> Engagement8Report:
        # Calls marked by a service that stopped before folding them are folded first.
        await Folder(pool, Pseudonymiser(settings.secret_key)).drain()
        return await engagement8(pool, m, args.from_, args.to, args.service)

    report = _with_database(settings, work)
    if args.format == "xlsx":
        export.write_xlsx(report, Path(args.output))
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    text = {
        "json": lambda: json.dumps(report, ensure_ascii=False, indent=2),
        "csv": lambda: export.to_csv(report),
        "table": lambda: export.render_table(report),
    }[args.format]()
    if args.output:
        Path(args.output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text)
    return 0


def cmd_rollup(args: argparse.Namespace) -> int:
    """Bring the reports' rollup up to date now (the service also does it in the background)."""
    from tqdm import tqdm

    from service.metrics.rollup import forget, refresh, span_days

    settings = _settings(args)

    async def work(pool: asyncpg.Pool, _applied: list[Migration]) -> int:
        if args.rebuild:
            await forget(pool)
        with tqdm(total=await span_days(pool, settings.municipality), unit="day") as bar:
            return await refresh(pool, settings.municipality, wait=True, on_round=bar.update)

    days = _with_database(settings, work)
    print(f"rollup up to date ({days} days rebuilt)")
    return 0


def cmd_refold(args: argparse.Namespace) -> int:
    """Rebuild every call row from the stored events (after a rule changed)."""
    from tqdm import tqdm

    from service.app import source_parsers
    from service.calls.rebuild import mark_all, refold_all, reparse
    from service.metrics.rollup_queries import stored_events
    from service.privacy import Pseudonymiser

    settings = _settings(args)

    async def work(pool: asyncpg.Pool, _applied: list[Migration]) -> tuple[int, int]:
        events = 0
        if args.reparse:
            total = await stored_events(pool)
            with tqdm(total=total, unit="event", desc="re-normalising") as bar:
                events = await reparse(pool, source_parsers(settings.municipality.tz), bar.update)
        async with pool.acquire() as conn:
            calls = await mark_all(conn)
        with tqdm(total=calls, unit="call", desc="refolding") as bar:
            await refold_all(pool, Pseudonymiser(settings.secret_key), bar.update)
        return events, calls

    events, calls = _with_database(settings, work)
    print(f"rebuilt {calls} calls" + (f" from {events} re-normalised events" if events else ""))
    return 0


def add_parser(sub: Any) -> None:
    """Add the report, rollup, refold sub-commands."""
    rep = sub.add_parser("report", help="reports").add_subparsers(
        dest="report", required=True, metavar="REPORT"
    )
    s = with_config(rep.add_parser("engagement8", help="the Engagement 8 figures of a period"))
    s.add_argument("--from", dest="from_", type=_day, required=True, metavar="YYYY-MM-DD")
    s.add_argument("--to", type=_day, required=True, metavar="YYYY-MM-DD")
    s.add_argument("--service", help="one service's slug (default: every service)")
    s.add_argument("--format", choices=("table", "json", "csv", "xlsx"), default="table")
    s.add_argument("--output", help="write to this file (required for xlsx)")
    s.set_defaults(func=cmd_report_engagement8)
    s = with_config(
        sub.add_parser("rollup", help="bring the rollup that long reports read up to date")
    )
    s.add_argument(
        "--rebuild", action="store_true", help="rebuild it all (it is a cache of the calls)"
    )
    s.set_defaults(func=cmd_rollup)
    s = with_config(sub.add_parser("refold", help="rebuild every call from its stored events"))
    s.add_argument(
        "--reparse",
        action="store_true",
        help="first normalise the raw payloads again (after a parser change)",
    )
    s.set_defaults(func=cmd_refold)
