"""``decroche campaign …``: plan a campaign file, create it, list campaigns, read results."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaigns import flows, payloads, queries
from campaigns.grids.library import search_path
from campaigns.plan.formats import FORMATS, to_csv, to_ics, to_json, to_table
from campaigns.plan.planner import PlanError, plan_campaign
from campaigns.spec import load_campaign
from campaigns.web import exports
from service.accounts import queries as accounts
from service.cli.support import UserError, settings_of, with_config, with_database
from service.municipality.calendar import Calendar


def add_parser(sub: Any) -> None:
    """Add the campaign sub-commands."""
    camp = sub.add_parser("campaign", help="mystery-call campaigns").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = with_config(
        camp.add_parser("plan", help="print the plan of a campaign file (nothing is stored)")
    )
    s.add_argument("file", type=Path)
    s.add_argument("--format", choices=FORMATS, default="table")
    s.add_argument("--output", type=Path, help="write to this file instead of the terminal")
    s.add_argument("--evaluator", help="only this evaluator's calls (e.g. for their .ics)")
    s.set_defaults(func=cmd_plan)
    s = with_config(camp.add_parser("create", help="store a campaign file and its plan"))
    s.add_argument("file", type=Path)
    s.set_defaults(func=cmd_create)
    s = with_config(camp.add_parser("list", help="the campaigns, newest first"))
    s.set_defaults(func=cmd_list)
    s = with_config(camp.add_parser("results", help="a campaign's results"))
    s.add_argument("id", type=int)
    s.add_argument("--format", choices=("table", "json", "csv", "xlsx"), default="table")
    s.add_argument("--table", choices=exports.TABLES, default="services", help="for csv")
    s.add_argument("--output", type=Path, help="write to this file (required for xlsx)")
    s.set_defaults(func=cmd_results)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        print(text.rstrip("\n"))
        return
    output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    print(f"wrote {output}", file=sys.stderr)


def cmd_plan(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    m = settings.municipality
    spec = load_campaign(args.file, m)
    try:
        lib = flows.library(settings)
    except flows.CampaignError as exc:
        raise UserError(exc.message) from None
    if lib.get(spec.grid, spec.grid_version) is None:
        dirs = ", ".join(str(d) for d in search_path(settings))
        print(
            f"warning: grid {spec.grid!r} is not in the grid files ({dirs}); "
            "`decroche campaign create` also looks for it in the database",
            file=sys.stderr,
        )
    try:
        plan = plan_campaign(spec, Calendar(m))
    except PlanError as exc:
        raise UserError(
            f"{args.file}: the campaign cannot be planned:\n  " + "\n  ".join(exc.problems)
        ) from None
    calls = plan.calls
    if args.evaluator:
        calls = tuple(c for c in calls if c.evaluator == args.evaluator.strip().lower())
        if not calls:
            known = ", ".join(e.email for e in spec.evaluators)
            raise UserError(f"no call for evaluator {args.evaluator} (evaluators: {known})")
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    text = {
        "table": lambda: to_table(spec, calls, m.tz),
        "json": lambda: to_json(calls),
        "csv": lambda: to_csv(calls, m.tz),
        "ics": lambda: to_ics(spec, calls, names={s.slug: s.name for s in m.services}),
    }[args.format]()
    if args.format == "ics" and args.output is not None:
        args.output.write_bytes(text.encode("utf-8"))
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    _write(text, args.output)
    return 0


def cmd_create(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    calendar = Calendar(settings.municipality)
    path: Path = args.file
    spec = load_campaign(path, settings.municipality)  # file faults name the file first
    source = path.read_text("utf-8")

    async def work(pool: Any, _applied: list[Any]) -> Any:
        cid = await flows.create(
            pool,
            settings,
            calendar,
            spec.as_dict(),
            origin=str(path),
            source=source,
            actor="cli",
        )
        row = await flows.campaign_or_404(pool, cid)
        detail = dict(payloads.creation_detail(row))
        await accounts.audit(pool, "cli", "campaign.create", f"campaign:{cid}", detail)
        return row

    try:
        row = with_database(settings, work)
    except flows.CampaignError as exc:
        raise UserError(f"{path}: {exc.message}" + _problems(exc)) from None
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    print(
        f"created campaign {row['id']} « {row['name']} »: {row['calls']} calls planned "
        f"with grid {row['grid_slug']} v{row['grid_version']}; {base}/campagnes/{row['id']}"
    )
    for note in row["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return 0


def _problems(exc: flows.CampaignError) -> str:
    return "".join(f"\n  {p}" for p in exc.problems) if len(exc.problems) > 1 else ""


def cmd_list(args: argparse.Namespace) -> int:
    settings = settings_of(args)

    async def work(pool: Any, _applied: list[Any]) -> list[Any]:
        return list(await queries.list_campaigns(pool))

    rows = with_database(settings, work)
    if not rows:
        print("no campaigns yet: decroche campaign create FILE")
        return 0
    for r in rows:
        spec = r["spec"]
        print(
            f"{r['id']:>4}  {r['name']:<40} {spec['starts_on']}..{spec['ends_on']}  "
            f"{r['grid_slug']} v{r['grid_version']}  {r['done']}/{r['calls']} done, "
            f"{r['missed']} missed  {r['status']}"
        )
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    settings = settings_of(args)
    calendar = Calendar(settings.municipality)
    if args.format == "xlsx" and args.output is None:
        raise UserError("--format xlsx needs --output FILE.xlsx")

    async def work(
        pool: Any, _applied: list[Any]
    ) -> tuple[payloads.CampaignResults, list[payloads.CallJson]]:
        async with pool.acquire() as conn:
            results = await flows.results(
                conn,
                calendar,
                args.id,
                now=datetime.now(UTC),
                secret_key=settings.secret_key,
                caller_id=settings.twilio_caller_id,
            )
            row = await flows.campaign_or_404(conn, args.id)
            rows = await queries.current_calls(conn, args.id)
        names = {s.slug: s.name for s in settings.municipality.services}
        evaluators = {e["email"]: e["name"] for e in row["spec"]["evaluators"]}
        now = datetime.now(UTC)
        return results, [payloads.call_json(r, names, evaluators, calendar.tz, now) for r in rows]

    try:
        results, calls = with_database(settings, work)
    except flows.CampaignError as exc:
        raise UserError(exc.message) from None
    if args.format == "xlsx":
        args.output.write_bytes(exports.to_xlsx(results, calls))
        print(f"wrote {args.output}", file=sys.stderr)
        return 0
    if args.format == "json":
        _write(json.dumps(results, ensure_ascii=False, indent=2), args.output)
    elif args.format == "csv":
        _write(exports.to_csv(results, args.table, calls), args.output)
    else:
        _write(exports.to_table(results), args.output)
    return 0
