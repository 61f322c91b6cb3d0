"""``decroche digest preview`` and ``decroche digest send``."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.cli.support import UserError, with_config
from service.cli.support import settings_of as _settings
from service.cli.support import with_database as _with_database
from service.digest import queries as q
from service.digest.delivery import STALE_CLAIM, DigestSender, Outcome, recipients
from service.digest.weeks import IsoWeek, previous_week
from service.settings import Settings


def _sender(settings: Settings, pool: Any) -> DigestSender:
    # The composition root's sender: the digest with the mystery calls' section, mailing
    # through a mailer built by the service's own factory.
    from service.app import digest_sender
    from service.outside.mail import mailer_for

    return digest_sender(settings, pool, mailer=mailer_for(settings))


RESULTS = {
    "sent": "sent",
    "retry": "refused or unreachable (not sent; run again later)",
    "failed": "refused (not sent)",
    "unknown": "lost on the way: it may have gone (--force sends it again)",
}


def _week(value: str) -> IsoWeek:
    try:
        return IsoWeek.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _focus(settings: Settings, who: str | None) -> tuple[str, ...]:
    if not who:
        return ()
    known = recipients(settings.municipality)
    if who.lower() not in known:
        listed = ", ".join(known) or "none configured"
        raise UserError(f"{who} is not a recipient of the digest (recipients: {listed})")
    return known[who.lower()]


def cmd_preview(args: argparse.Namespace) -> int:
    from service.digest.message import Charts, build_message, preview_html

    settings = _settings(args)
    week = args.week or previous_week(datetime.now(UTC), settings.municipality.tz)
    focus = _focus(settings, args.recipient)
    output = Path(args.output or f"digest-{week}.html")

    async def work(pool: Any, _applied: list[Any]) -> tuple[str, bytes | None]:
        sender = _sender(settings, pool)
        digest = await sender.build(week)
        charts = Charts(digest)
        page = preview_html(digest, focus, charts, link=sender.link)
        eml = None
        if args.eml:
            to = args.recipient or "destinataire@example.org"
            message = build_message(
                digest, to, focus, charts.for_recipient(focus), link=sender.link
            )
            message["From"] = settings.mail_from
            eml = message.as_bytes()
        return page, eml

    page, eml = _with_database(settings, work)
    output.write_text(page, encoding="utf-8")
    print(f"wrote {output} (the digest of {week})", file=sys.stderr)
    if eml is not None:
        Path(args.eml).write_bytes(eml)
        print(f"wrote {args.eml} (the whole message, to open in a mail client)", file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(output.resolve().as_uri())
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = _settings(args)
    if not settings.smtp_url:
        raise UserError(
            "DECROCHE_SMTP_URL is not set: the digest can be previewed "
            "(decroche digest preview), not sent"
        )
    to = recipients(settings.municipality)
    if not to:
        raise UserError(
            f"{settings.config_path}: no recipients ([digest] recipients, or "
            "[services.digest] recipients)"
        )
    week: IsoWeek = args.week
    today = datetime.now(UTC).astimezone(settings.municipality.tz).date()
    if week.sunday >= today:
        # Sent now, the digest would be marked sent with part of the week, and the whole
        # week's would never go.
        raise UserError(
            f"{week} is not over yet (it ends on {week.sunday:%A %d %B %Y}); "
            "decroche digest preview shows it so far"
        )

    async def work(pool: Any, _applied: list[Any]) -> tuple[list[Outcome], list[Any]]:
        sender = _sender(settings, pool)
        now = datetime.now(UTC)
        await q.enqueue(pool, str(week), to, now)
        states = ["failed", "pending"]
        if args.force:
            states += ["sent", "unknown", "sending"]
        await q.reopen(pool, str(week), to, states, now, now - STALE_CLAIM)
        with tqdm(total=len(to), unit="message", desc=f"digest {week}") as bar:
            sender.on_result = lambda _result: bar.update(1)
            outcomes = await sender.deliver(week, by_hand=True)
        return outcomes, await q.deliveries(pool, str(week))

    outcomes, rows = _with_database(settings, work)
    for o in outcomes:
        print(f"{o.recipient}: {RESULTS[o.result]}" + (f" — {o.error}" if o.error else ""))
    done = {o.recipient for o in outcomes}
    for r in rows:
        if r["recipient"] in to and r["recipient"] not in done:
            when = r["sent_at"].isoformat(timespec="minutes") if r["sent_at"] else "?"
            print(f"{r['recipient']}: already {r['state']} ({when}); --force sends it again")
    bad = [o for o in outcomes if o.result != "sent"]
    if bad:
        raise UserError(f"{len(bad)} of {len(outcomes)} messages were not sent (see above)")
    return 0


def add_parser(sub: Any) -> None:
    """Add the digest sub-commands."""
    dig = sub.add_parser("digest", help="the weekly e-mail digest").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(dig.add_parser("preview", help="write a week's digest as an HTML page"))
    s.add_argument("--week", type=_week, metavar="YYYY-Www", help="default: last week")
    s.add_argument("--output", help="the HTML file (default: digest-YYYY-Www.html)")
    s.add_argument(
        "--for",
        dest="recipient",
        metavar="EMAIL",
        help="as this recipient sees it (their services first)",
    )
    s.add_argument("--eml", metavar="FILE", help="also write the whole MIME message")
    s.add_argument("--open", action="store_true", help="open the page in a browser")
    s.set_defaults(func=cmd_preview)
    s = with_config(dig.add_parser("send", help="send a week's digest now (a week that is over)"))
    s.add_argument("--week", type=_week, metavar="YYYY-Www", required=True)
    s.add_argument(
        "--force", action="store_true", help="send again to recipients who already have it"
    )
    s.set_defaults(func=cmd_send)
