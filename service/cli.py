"""The ``decroche`` command.

Exit status: 0 on success, 1 on a failure the user can fix (the message says how), 2 on bad
arguments (argparse's own convention).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from campaigns.cli import add_parser as add_campaign_parser
from service import cli_imports
from service.calendar import Calendar
from service.cli_support import UserError
from service.cli_support import settings_of as _settings
from service.cli_support import with_database as _with_database
from service.db.embedded import EmbeddedDatabaseError
from service.db.errors import OneLineOutages
from service.digest.cli import add_parser as add_digest_parser
from service.municipality import WEEKDAYS, ConfigError, Municipality, load_municipality
from service.settings import default_config_path

log = logging.getLogger("decroche")


def cmd_serve(args: argparse.Namespace) -> int:
    from service.serve import ServeOptions, serve

    if args.workers < 1:
        raise UserError("--workers must be at least 1")
    opts = ServeOptions(
        host=args.host,
        port=args.port,
        demo=args.demo,
        demo_rate=args.demo_rate,
        demo_days=args.demo_days,
        workers=args.workers,
        reuse_port=args.reuse_port,
    )
    return serve(_settings(args), opts)


def cmd_migrate(args: argparse.Namespace) -> int:
    async def work(_pool: Any, applied: list[Any]) -> list[str]:
        return [f"{m.version:04d}_{m.name}" for m in applied]

    applied = _with_database(_settings(args), work)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def cmd_refold(args: argparse.Namespace) -> int:
    """Rebuild every call row from the stored events (after a rule changed)."""
    from tqdm import tqdm

    from service.app import source_parsers
    from service.calls.rebuild import mark_all, refold_all, reparse
    from service.privacy import Pseudonymiser

    settings = _settings(args)

    async def work(pool: Any, _applied: list[Any]) -> tuple[int, int]:
        events = 0
        if args.reparse:
            total = await pool.fetchval("SELECT count(*) FROM events")
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


def cmd_rollup(args: argparse.Namespace) -> int:
    """Bring the reports' rollup up to date now (the service also does it in the background)."""
    from tqdm import tqdm

    from service.metrics.rollup import refresh, span_days

    settings = _settings(args)

    async def work(pool: Any, _applied: list[Any]) -> int:
        if args.rebuild:
            await pool.execute("DELETE FROM rollup_state")
        with tqdm(total=await span_days(pool, settings.municipality), unit="day") as bar:
            return await refresh(pool, settings.municipality, wait=True, on_round=bar.update)

    days = _with_database(settings, work)
    print(f"rollup up to date ({days} days rebuilt)")
    return 0


def cmd_user(args: argparse.Namespace) -> int:
    """Accounts: add (password prompt or one-time set-up link), list, disable, link."""
    import getpass

    from service.accounts import queries as accounts
    from service.accounts.model import normalise_email, parse_role
    from service.accounts.passwords import check_strength, hash_password

    settings = _settings(args)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    validity = timedelta(days=3)
    try:
        email = normalise_email(args.email) if getattr(args, "email", None) else ""
        role = parse_role(args.role) if getattr(args, "role", None) else None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    password: str | None = None
    if args.action == "add" and not args.link and sys.stdin.isatty():
        password = getpass.getpass(f"Password for {email} (empty: print a set-up link): ")
        if password:
            problem = check_strength(password)
            if problem is not None:
                raise UserError(problem)
            if getpass.getpass("Again: ") != password:
                raise UserError("the two passwords differ")

    async def work(pool: Any, _applied: list[Any]) -> str:
        if args.action == "list":
            rows = await accounts.list_users(pool)
            return (
                "\n".join(
                    f"{r['email']:<40} {r['role']:<8} "
                    + (
                        "disabled"
                        if r["disabled_at"]
                        else "active"
                        if r["active"]
                        else "set-up pending"
                    )
                    for r in rows
                )
                or "no accounts yet: decroche user add EMAIL --role admin"
            )
        if args.action == "add":
            assert role is not None
            try:
                uid = await accounts.add_user(pool, email, role)
            except accounts.AccountError as exc:
                raise UserError(str(exc)) from None
            await accounts.audit(pool, "cli", "user.add", email, {"role": role.value})
            if password:
                await accounts.set_password(pool, uid, hash_password(password))
                return f"added {email} ({role.value}); they can log in at {base}/connexion"
        user = await accounts.get_user(pool, email)
        if user is None:
            raise UserError(f"no account for {email}")
        if args.action == "disable":
            await accounts.disable_user(pool, user["id"])
            await accounts.audit(pool, "cli", "user.disable", email)
            return f"disabled {email}; their sessions and API tokens are ended"
        token = await accounts.new_setup_link_token(pool, user["id"], validity)
        await accounts.audit(pool, "cli", "user.setup_link", email)
        return (
            f"{'added ' + email + ' (' + user['role'] + '); ' if args.action == 'add' else ''}"
            f"one-time set-up link (valid 3 days):\n{base}/connexion/activer?jeton={token}"
        )

    print(_with_database(settings, work))
    return 0


def cmd_privacy(args: argparse.Namespace) -> int:
    """Personal data: run the retention policy now (purge), or erase one caller (erase)."""
    from tqdm import tqdm

    from service.accounts import queries as accounts
    from service.privacy import Pseudonymiser
    from service.privacy.erasure import ErasureRefused, erase_caller
    from service.privacy.retention import retention_job
    from service.twilio_rest import TwilioRest

    settings = _settings(args)
    number = ""
    if args.action == "erase":
        # Prompted when not given, so the number stays out of the shell's history.
        number = args.number or input("caller's number to erase: ").strip()
        if not number:
            raise UserError("no number given")

    async def work(pool: Any, _applied: list[Any]) -> dict[str, Any]:
        if args.action == "purge":
            bars: dict[str, Any] = {}

            def progress(step: str, n: int) -> None:
                if step not in bars:
                    bars[step] = tqdm(unit=" " + step, desc=step, leave=False)
                bars[step].update(n)

            try:
                report = await retention_job(pool, settings, progress)
            finally:
                for bar in bars.values():
                    bar.close()
            return report.as_json()
        try:
            async with TwilioRest(settings) as twilio:
                done = await erase_caller(pool, Pseudonymiser(settings.secret_key), twilio, number)
        except ErasureRefused as exc:
            raise UserError(str(exc)) from None
        await accounts.audit(pool, "cli", "privacy.erase", None, done.as_json())
        return done.as_json()

    result = _with_database(settings, work)
    if args.action == "purge":
        rec = result["recordings"]
        print(
            f"numbers erased from {result['numbers_erased']} calls; recordings: "
            f"{rec['deleted']} deleted, {rec['forgotten']} forgotten, {rec['kept']} kept; "
            f"{result['quarantine_masked']} quarantined bodies masked; "
            f"{result['sessions_deleted']} expired sessions deleted"
        )
        for error in result["errors"]:
            print(f"warning: {error}", file=sys.stderr)
        return 1 if result["errors"] else 0
    print(
        f"erased: {result['calls']} calls, {result['events_rewritten']} events rewritten, "
        f"{result['recordings_deleted']} recordings deleted, "
        f"{result['quarantine_rewritten']} quarantined bodies rewritten"
    )
    if result["unrecognised"]:
        print(
            f"warning: {result['unrecognised']} calls keep the number in a form not "
            "recognised in their raw events; their rows are erased",
            file=sys.stderr,
        )
    return 0


def cmd_wall_token(args: argparse.Namespace) -> int:
    """Read-only links for unattended wall screens: create, list, revoke."""
    from service.accounts import queries as accounts

    settings = _settings(args)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"

    async def work(pool: Any, _applied: list[Any]) -> str:
        if args.action == "create":
            tid, token = await accounts.create_token(pool, "wall", None, args.name)
            await accounts.audit(pool, "cli", "wall_token.create", f"token:{tid}")
            return f"wall token {tid} « {args.name} »: {base}/mur?token={token}"
        if args.action == "revoke":
            if not await accounts.revoke_token(pool, args.id, "wall", None):
                raise UserError(f"no live wall token {args.id}")
            await accounts.audit(pool, "cli", "wall_token.revoke", f"token:{args.id}")
            return f"revoked wall token {args.id}"
        rows = await accounts.list_tokens(pool, "wall")
        return (
            "\n".join(
                f"{r['id']:>4}  {r['name']:<30} {r['prefix']}…  "
                + (f"revoked {r['revoked_at']:%Y-%m-%d}" if r["revoked_at"] else "live")
                for r in rows
            )
            or "no wall tokens"
        )

    print(_with_database(settings, work))
    return 0


def _digest_sender(settings: Any, pool: Any) -> Any:
    # The composition root's sender: the digest with the mystery calls' section.
    from service.app import digest_sender

    return digest_sender(settings, pool)


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-11-16") from None


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

    async def work(pool: Any, _applied: list[Any]) -> dict[str, Any]:
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


def describe(m: Municipality) -> str:
    """What a configuration says, in a few readable lines."""
    cal = Calendar(m)
    year = datetime.now(UTC).year
    out = [
        f"{m.name} — time zone {m.timezone}, holidays {m.holiday_zone} "
        f"(Whit Monday {'open' if m.whit_monday_open else 'closed'})"
    ]
    out.append("policy: " + ", ".join(f"{k}={v:g}" for k, v in m.policy.as_dict().items()))
    if m.closures:
        out.append("closures: " + ", ".join(sorted(d.isoformat() for d in m.closures)))
    holidays = [
        f"{d.isoformat()} {n}"
        for d, n in sorted({d: cal.holiday(d) for d in _year_days(year) if cal.holiday(d)}.items())
    ]
    out.append(f"public holidays {year}: " + "; ".join(holidays))
    d = m.digest
    out.append(
        f"weekly digest: {WEEKDAYS[d.send_weekday]} {d.send_time:%H:%M} local, for the ISO "
        "week before; to "
        + (", ".join(d.recipients) if d.recipients else "nobody globally")
        + (
            "; service heads: "
            + ", ".join(f"{s.slug} → {', '.join(s.digest_recipients)}" for s in heads)
            if (heads := [s for s in m.services if s.digest_recipients])
            else ""
        )
    )
    for s in m.services:
        out.append(
            f"- {s.slug} « {s.name} »: lines {', '.join(s.lines) or 'none'}"
            + (f"; queues {', '.join(s.queues)}" if s.queues else "")
        )
        for wd, day in enumerate(WEEKDAYS):
            ivs = s.hours.get(wd, ())
            if ivs:
                out.append(
                    f"    {day} "
                    + ", ".join(
                        f"{a:%H:%M}-{'24:00' if b.hour == 23 and b.minute == 59 else f'{b:%H:%M}'}"
                        for a, b in ivs
                    )
                )
        if s.policy != m.policy:
            out.append(
                "    policy: "
                + ", ".join(
                    f"{k}={v:g}"
                    for k, v in s.policy.as_dict().items()
                    if m.policy.as_dict()[k] != v
                )
            )
        if s.closures:
            out.append("    closures: " + ", ".join(sorted(d.isoformat() for d in s.closures)))
    return "\n".join(out)


def _year_days(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


def cmd_check_config(args: argparse.Namespace) -> int:
    path = args.file or args.config
    if path is None:
        path = os.environ.get("DECROCHE_CONFIG") or str(default_config_path())
    m = load_municipality(path)
    print(f"{path}: OK")
    print(describe(m))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import aiohttp

    from service.demo.simulate import Sender, backfill, past_days, run_live

    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        raise UserError(
            "set TWILIO_AUTH_TOKEN (or --auth-token) to the token the service "
            "checks signatures with"
        )
    if args.rate <= 0:
        raise UserError("--rate must be positive (calls started per second)")
    m = load_municipality(args.config or os.environ.get("DECROCHE_CONFIG") or default_config_path())

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            sender = Sender(session, args.url, token)
            if args.backfill_days:
                now = datetime.now(UTC)
                await backfill(
                    sender,
                    m,
                    past_days(now.astimezone(m.tz).date(), args.backfill_days),
                    seed=args.seed or 1,
                    until=now,
                )
            if args.duration != 0:
                await run_live(
                    sender,
                    m,
                    rate=args.rate,
                    duration=args.duration,
                    seed=args.seed,
                    speed=args.speed,
                )
            st = sender.stats
            print(
                f"{st.calls} calls, {st.sent} callbacks accepted, {st.failed} failed; "
                f"HTTP statuses: {dict(sorted(st.status.items()))}"
            )
            if st.failed:
                raise UserError(f"{st.failed} callbacks were not accepted (see statuses)")

    asyncio.run(run())
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="decroche",
        description=("Décroché: telephony quality for town halls (Engagement 8 answer times)."),
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument(
            "--config",
            help="configuration file (default: $DECROCHE_CONFIG, else the shipped example)",
        )
        return sp

    s = with_config(sub.add_parser("serve", help="run the service (migrates first)"))
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument(
        "--demo", action="store_true", help="also run a simulated switchboard feeding the service"
    )
    s.add_argument("--demo-rate", type=float, default=0.2, help="demo calls per second")
    s.add_argument("--demo-days", type=int, default=7, help="past days the demo replays")
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="service processes sharing the port (e.g. one per core)",
    )
    s.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    s = with_config(
        sub.add_parser("rollup", help="bring the rollup that long reports read up to date")
    )
    s.add_argument(
        "--rebuild", action="store_true", help="rebuild it all (it is a cache of the calls)"
    )
    s.set_defaults(func=cmd_rollup)

    users = sub.add_parser("user", help="accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(users.add_parser("add", help="add an account (prompts for a password)"))
    s.add_argument("email")
    s.add_argument("--role", required=True, choices=["admin", "quality", "viewer"])
    s.add_argument(
        "--link", action="store_true", help="print a one-time set-up link instead of prompting"
    )
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("list", help="list the accounts"))
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("disable", help="disable an account, end its sessions"))
    s.add_argument("email")
    s.set_defaults(func=cmd_user)
    s = with_config(users.add_parser("link", help="a new one-time set-up link (lost password)"))
    s.add_argument("email")
    s.set_defaults(func=cmd_user)

    walls = sub.add_parser("wall-token", help="read-only links for wall screens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(walls.add_parser("create", help="create a wall link"))
    s.add_argument("name", help="which screen, e.g. « Accueil, écran 1 »")
    s.set_defaults(func=cmd_wall_token)
    s = with_config(walls.add_parser("list", help="list wall tokens"))
    s.set_defaults(func=cmd_wall_token)
    s = with_config(walls.add_parser("revoke", help="revoke a wall token"))
    s.add_argument("id", type=int)
    s.set_defaults(func=cmd_wall_token)

    cli_imports.add_parser(sub, with_config)
    add_campaign_parser(sub, with_config)
    add_digest_parser(sub, with_config, _digest_sender)

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

    s = with_config(sub.add_parser("refold", help="rebuild every call from its stored events"))
    s.add_argument(
        "--reparse",
        action="store_true",
        help="first normalise the raw payloads again (after a parser change)",
    )
    s.set_defaults(func=cmd_refold)

    s = with_config(sub.add_parser("migrate", help="apply pending database migrations"))
    s.set_defaults(func=cmd_migrate)

    s = with_config(
        sub.add_parser("check-config", help="validate a configuration file and print what it says")
    )
    s.add_argument("file", nargs="?", help="the file (default: as --config)")
    s.set_defaults(func=cmd_check_config)

    s = with_config(
        sub.add_parser(
            "simulate", help="send a realistic, signed Twilio call stream to a running service"
        )
    )
    s.add_argument(
        "--url",
        required=True,
        help="the service's Twilio webhook URL, e.g. http://127.0.0.1:8080/webhooks/twilio",
    )
    s.add_argument("--rate", type=float, default=0.5, help="calls started per second")
    s.add_argument(
        "--duration",
        type=float,
        default=60,
        help="seconds of live traffic (0: none, only the backfill)",
    )
    s.add_argument(
        "--backfill-days",
        type=int,
        default=0,
        help="first replay this many past days, as fast as the service takes them",
    )
    s.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="time compression of each call (2 = waits twice as short)",
    )
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--auth-token", help="default: $TWILIO_AUTH_TOKEN")
    s.set_defaults(func=cmd_simulate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # pgserver narrates every start and stop at INFO; only its warnings matter to users.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    # twilio's client logs every request and its headers at INFO: a page per mystery call.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("asyncpg.pool").addFilter(OneLineOutages())
    try:
        return int(args.func(args))
    except (ConfigError, UserError, EmbeddedDatabaseError) as exc:
        print(f"decroche: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`decroche … | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
