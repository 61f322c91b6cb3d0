"""``decroche check-config``: validate a configuration file and say what it says."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.cli.support import with_config
from service.municipality.calendar import Calendar
from service.municipality.model import WEEKDAYS, Municipality, load_municipality
from service.settings import default_config_path


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


def add_parser(sub: Any) -> None:
    """Add the check sub-commands."""
    s = with_config(
        sub.add_parser("check-config", help="validate a configuration file and print what it says")
    )
    s.add_argument("file", nargs="?", help="the file (default: as --config)")
    s.set_defaults(func=cmd_check_config)
