"""``decroche import asterisk FILE [--follow]`` and ``decroche import csv FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from service.cli.support import UserError, settings_of, with_config, with_database


def add_parser(sub: Any) -> None:
    """Add the import sub-commands."""
    imp = sub.add_parser("import", help="import PBX data (queue_log, CDR as CSV)").add_subparsers(
        dest="kind", required=True, metavar="KIND"
    )
    s = with_config(
        imp.add_parser(
            "asterisk",
            help="an Asterisk queue_log file, or an export of the queue_log table "
            "(resumable; importing again changes nothing)",
        )
    )
    s.add_argument("file", type=Path)
    s.add_argument(
        "--follow", action="store_true", help="keep reading the live file, across log rotation"
    )
    s.set_defaults(func=cmd_import)
    s = with_config(
        imp.add_parser("csv", help="call-detail records as CSV, with the CDR webhook's columns")
    )
    s.add_argument("file", type=Path)
    s.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.privacy import Pseudonymiser
    from webhooks.imports import UnreadableFile, import_asterisk, import_cdr_csv

    path: Path = args.file
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    settings = settings_of(args)
    tz = settings.municipality.tz
    pseudonymise = Pseudonymiser(settings.secret_key)
    bar = tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, dynamic_ncols=True
    )
    lines = 0

    def progress(size: int, n: int) -> None:
        nonlocal lines
        lines += n
        if args.kind == "asterisk" and args.follow and bar.n + size > (bar.total or 0):
            bar.total = bar.n + size  # the live file grew
        bar.update(size)
        bar.set_postfix(lines=f"{lines:,}", refresh=False)

    async def work(pool: Any, _applied: list[Any]) -> Any:
        if args.kind == "csv":
            return await import_cdr_csv(pool, path, tz, pseudonymise, progress=progress)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await import_asterisk(
            pool, path, tz, pseudonymise, follow=args.follow, progress=progress, stop=stop
        )

    try:
        report = with_database(settings, work)
    except UnreadableFile as exc:
        raise UserError(str(exc)) from None
    finally:
        bar.close()
    if report.resumed_from:
        print(f"resumed after line {report.resumed_from:,} (where the last import stopped)")
    print(
        f"{report.lines:,} lines read: {report.new:,} events stored, "
        f"{report.duplicates:,} already there, {report.refused:,} refused; "
        f"{report.calls:,} calls updated"
        + (f"; followed {report.rotations} rotation(s)" if report.rotations else "")
    )
    if report.refused:
        print(
            f"refused lines are kept in the quarantine table with their line numbers; "
            f"the first {len(report.reasons)}:",
            file=sys.stderr,
        )
        for reason in report.reasons:
            print(f"  {reason}", file=sys.stderr)
    return 0
