"""``decroche privacy purge`` and ``decroche privacy erase``: personal data."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg

from service.cli.support import UserError, with_config
from service.cli.support import settings_of as _settings
from service.cli.support import with_database as _with_database
from service.db.migrate import Migration
from service.privacy.erasure import Erasure
from service.privacy.retention import RetentionReport
from service.settings import Settings


def cmd_privacy(args: argparse.Namespace) -> int:
    """Personal data: run the retention policy now (purge), or erase one caller (erase)."""
    settings = _settings(args)
    if args.action == "purge":
        return _purge(settings)
    # Prompted when not given, so the number stays out of the shell's history.
    number = args.number or input("caller's number to erase: ").strip()
    if not number:
        raise UserError("no number given")
    return _erase(settings, number)


def _purge(settings: Settings) -> int:
    """Run the retention job now, with a progress bar per step; 1 if recordings were kept."""
    from tqdm import tqdm

    from service.outside.twilio.client import twilio_client
    from service.privacy.retention import retention_job

    async def work(pool: asyncpg.Pool, _applied: list[Migration]) -> RetentionReport:
        bars: dict[str, Any] = {}  # tqdm's bars, one per step

        def progress(step: str, n: int) -> None:
            if step not in bars:
                bars[step] = tqdm(unit=" " + step, desc=step, leave=False)
            bars[step].update(n)

        try:
            async with twilio_client(settings) as twilio:
                report = await retention_job(pool, settings, twilio, progress)
        finally:
            for bar in bars.values():
                bar.close()
        return report

    report = _with_database(settings, work)
    rec = report.recordings
    print(
        f"numbers erased from {report.numbers} calls; recordings: "
        f"{rec['deleted']} deleted, {rec['forgotten']} forgotten, {rec['kept']} kept; "
        f"{report.quarantined} quarantined bodies masked; "
        f"{report.sessions} expired sessions deleted"
    )
    for error in report.errors:
        print(f"warning: {error}", file=sys.stderr)
    return 1 if report.errors else 0


def _erase(settings: Settings, number: str) -> int:
    """Erase one caller's data (audited, the number itself not kept); a refusal is a user
    error with the reason."""
    from service.accounts import queries as accounts
    from service.outside.twilio.client import twilio_client
    from service.privacy import Pseudonymiser
    from service.privacy.erasure import ErasureRefused, erase_caller

    async def work(pool: asyncpg.Pool, _applied: list[Migration]) -> Erasure:
        try:
            async with twilio_client(settings) as twilio:
                done = await erase_caller(pool, Pseudonymiser(settings.secret_key), twilio, number)
        except ErasureRefused as exc:
            raise UserError(str(exc)) from None
        await accounts.audit(pool, "cli", "privacy.erase", None, done.as_json())
        return done

    done = _with_database(settings, work)
    print(
        f"erased: {done.calls} calls, {done.events} events rewritten, "
        f"{done.recordings} recordings deleted, "
        f"{done.quarantined} quarantined bodies rewritten"
    )
    if done.unrecognised:
        print(
            f"warning: {done.unrecognised} calls keep the number in a form not "
            "recognised in their raw events; their rows are erased",
            file=sys.stderr,
        )
    return 0


def add_parser(sub: Any) -> None:
    """Add the privacy sub-commands."""
    priv = sub.add_parser("privacy", help="personal data: retention and erasure").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(
        priv.add_parser("purge", help="apply the retention policy now (also run daily at 03:30)")
    )
    s.set_defaults(func=cmd_privacy)
    s = with_config(
        priv.add_parser("erase", help="erase one caller's numbers and recordings (GDPR art. 17)")
    )
    s.add_argument("number", nargs="?", help="the caller's number (prompted when omitted)")
    s.set_defaults(func=cmd_privacy)
