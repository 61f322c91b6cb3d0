"""``decroche import asterisk FILE [--follow]`` and ``decroche import csv FILE``.

Here the two halves of a file import meet: ``webhooks/files.py`` reads and parses the file,
the core's :class:`~service.calls.bulk.BulkWriter` stores what it read (the webhooks' twin
is :class:`~service.calls.ingest.Ingestor`). Both are imported when a command runs, not
when the command line is parsed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli.support import UserError, settings_of, with_config, with_database

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    import asyncpg

    from service.calls.bulk import ImportReport, Progress
    from service.privacy import Pseudonymiser


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
    from service.privacy import Pseudonymiser
    from webhooks.files import UnreadableFile

    path: Path = args.file
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    settings = settings_of(args)
    tz = settings.municipality.tz
    pseudonymise = Pseudonymiser(settings.secret_key)
    bar, progress = _progress_bar(path, grows=args.kind == "asterisk" and args.follow)

    async def work(pool: Any, _applied: list[Any]) -> Any:
        if args.kind == "csv":
            return await import_cdr_csv(pool, path, tz, pseudonymise, progress=progress)
        return await import_asterisk(
            pool, path, tz, pseudonymise, follow=args.follow, progress=progress, stop=_stop()
        )

    try:
        report = with_database(settings, work)
    except UnreadableFile as exc:
        raise UserError(str(exc)) from None
    finally:
        bar.close()
    _print_report(report)
    return 0


def _progress_bar(path: Path, *, grows: bool) -> tuple[Any, Progress]:
    """A progress bar over the file's bytes (``grows``: a live file, followed) and the
    callback that moves it."""
    from tqdm import tqdm

    bar = tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name, dynamic_ncols=True
    )
    lines = 0

    def progress(size: int, n: int) -> None:
        nonlocal lines
        lines += n
        if grows and bar.n + size > (bar.total or 0):
            bar.total = bar.n + size  # the live file grew
        bar.update(size)
        bar.set_postfix(lines=f"{lines:,}", refresh=False)

    return bar, progress


def _stop() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM: a followed import then stops cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


def _print_report(report: ImportReport) -> None:
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


async def import_asterisk(
    pool: asyncpg.Pool,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    follow: bool = False,
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
    poll_s: float = 0.5,
    batch_size: int | None = None,
) -> ImportReport:
    """Import a queue_log file (resuming where a previous run stopped); with ``follow``,
    keep reading it as it grows, across rotation, until ``stop`` is set. ``batch_size``:
    lines per batch (None: the reader's own)."""
    from service.calls.bulk import BulkWriter
    from webhooks import asterisk
    from webhooks.files import BATCH, read_queue_log

    async with BulkWriter(pool, asterisk.SOURCE, pseudonymise, progress) as writer:
        await read_queue_log(
            writer,
            path,
            tz,
            pseudonymise,
            follow=follow,
            stop=stop,
            poll_s=poll_s,
            batch_size=batch_size or BATCH,
        )
    return writer.report


async def import_cdr_csv(
    pool: asyncpg.Pool,
    path: Path,
    tz: ZoneInfo,
    pseudonymise: Pseudonymiser,
    *,
    progress: Progress | None = None,
    batch_size: int | None = None,
) -> ImportReport:
    """Import call-detail records from a CSV file with the webhook's column names."""
    from service.calls.bulk import BulkWriter
    from webhooks import cdr
    from webhooks.files import BATCH, read_cdr_csv

    async with BulkWriter(pool, cdr.SOURCE, pseudonymise, progress) as writer:
        await read_cdr_csv(writer, path, tz, pseudonymise, batch_size=batch_size or BATCH)
    return writer.report
