"""A plan as a terminal table (French), JSON, CSV or an iCalendar file for the evaluators."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from campaigns.plan.planner import PlannedCall
from campaigns.spec import CampaignSpec
from service.web.cells import csv_row

FORMATS = ("table", "json", "csv", "ics")
DAYS_FR = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
HALVES_FR = {"morning": "matin", "afternoon": "après-midi"}
MOMENTS_FR = {
    "opening": "ouverture",
    "closing": "fermeture",
    "lunch": "pause de midi",
    "core": "",
}
PLAN_FIELDS = tuple(f.name for f in fields(PlannedCall))  # the JSON keys of a planned call
MODES_FR = {"manual": "manuel", "assisted": "assisté"}
CSV_COLUMNS = ("scheduled_at", "date", "time", "weekday", *PLAN_FIELDS[1:])


def to_json(calls: Sequence[PlannedCall]) -> str:
    return json.dumps([c.as_dict() for c in calls], ensure_ascii=False, indent=1)


def to_csv(calls: Sequence[PlannedCall], tz: ZoneInfo) -> str:
    """The plan for tools; scenarios and names typed by people never become formulas."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for c in calls:
        local = c.scheduled_at.astimezone(tz)
        w.writerow(
            csv_row(
                [
                    c.scheduled_at.isoformat(),
                    local.date().isoformat(),
                    local.strftime("%H:%M"),
                    local.isoweekday(),
                    c.service,
                    c.number,
                    c.scenario or "",
                    c.evaluator,
                    c.mode,
                    c.half_day,
                    c.moment,
                ]
            )
        )
    return out.getvalue()


def to_table(spec: CampaignSpec, calls: Sequence[PlannedCall], tz: ZoneInfo) -> str:
    """The plan for people: one line a call, then what each target and evaluator gets."""
    names = {e.email: e.name for e in spec.evaluators}
    rows = [("Date", "Heure", "Service", "Numéro", "Scénario", "Évaluateur", "Moment")]
    for c in calls:
        local = c.scheduled_at.astimezone(tz)
        rows.append(
            (
                f"{DAYS_FR[local.weekday()]} {local:%d/%m/%Y}",
                local.strftime("%H:%M"),
                c.service,
                c.number,
                c.scenario or "—",
                names.get(c.evaluator, c.evaluator),
                " ".join(x for x in (HALVES_FR[c.half_day], MOMENTS_FR[c.moment]) if x),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("─" * w for w in widths))
    lines.append("")
    lines.append(
        f"« {spec.name} » : {len(calls)} appels du {spec.starts_on:%d/%m/%Y} au "
        f"{spec.ends_on:%d/%m/%Y}, grille {spec.grid}, mode {MODES_FR[spec.mode]}"
    )
    for t in spec.targets:
        mine = [c for c in calls if (c.service, c.number) == (t.service, t.number)]
        halves = Counter(c.half_day for c in mine)
        moments = Counter(c.moment for c in mine)
        lines.append(
            f"  {t.service} ({t.number}) : {len(mine)} appels — {halves['morning']} le matin, "
            f"{halves['afternoon']} l'après-midi ; à l'ouverture {moments['opening']}, "
            f"à la pause de midi {moments['lunch']}, à la fermeture {moments['closing']}"
        )
    loads = Counter(c.evaluator for c in calls)
    lines.append(
        "  évaluateurs : " + ", ".join(f"{e.name} {loads[e.email]}" for e in spec.evaluators)
    )
    return "\n".join(lines)


def _escape(text: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line ends as ``\\n``, no other
    control character (a name or a scenario must never start an iCalendar line of its own)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch == "\n" or ch >= " ")
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _param(text: str) -> str:
    """A quoted parameter value: no control character, no double quote."""
    return "".join(ch for ch in text if ch >= " " and ch != '"')


def _fold(line: str) -> list[str]:
    """RFC 5545 line folding: at most 75 octets a line, never inside a UTF-8 character."""
    out: list[str] = []
    current = ""
    for ch in line:
        limit = 75 if not out else 74  # continuation lines start with a space
        if len((current + ch).encode()) > limit:
            out.append(current)
            current = ch
        else:
            current += ch
    out.append(current)
    return [out[0], *(" " + x for x in out[1:])]


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def to_ics(
    spec: CampaignSpec,
    calls: Sequence[PlannedCall],
    *,
    names: dict[str, str] | None = None,
    links: dict[int, str] | None = None,
    stamp: datetime | None = None,
) -> str:
    """An iCalendar file of the calls (one event each, a reminder 15 minutes before).

    ``links`` maps a call's position to the URL of its grid page, when the campaign is
    stored; ``stamp`` is the DTSTAMP: by default the campaign's first day (00:00 UTC), so
    that the same file and seed give the same file, byte for byte. Calendars tell events
    apart by UID, which changes with the call's time and target."""
    scenarios = {s.id: s for s in spec.scenarios}
    evaluators = {e.email: e.name for e in spec.evaluators}
    names = names or {}
    links = links or {}
    now = _utc(stamp or datetime.combine(spec.starts_on, time(), UTC))
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Décroché//Appels mystères//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_escape(spec.name)}",
    ]
    for i, c in enumerate(calls):
        service = names.get(c.service, c.service)
        description = [f"Numéro à appeler : {c.number}", f"Service : {service}"]
        scenario = scenarios.get(c.scenario or "")
        if scenario is not None:
            description.append(f"Scénario : {scenario.question}")
            if scenario.expected:
                description.append(f"Réponse attendue : {scenario.expected}")
        description.append(f"Grille : {spec.grid}")
        if i in links:
            description.append(f"Grille à remplir : {links[i]}")
        lines += _event(
            spec,
            c,
            service=service,
            evaluator=evaluators.get(c.evaluator, c.evaluator),
            description=description,
            link=links.get(i),
            stamp=now,
        )
    lines.append("END:VCALENDAR")
    return "".join(f"{part}\r\n" for line in lines for part in _fold(line))


def _event(
    spec: CampaignSpec,
    c: PlannedCall,
    *,
    service: str,
    evaluator: str,
    description: list[str],
    link: str | None,
    stamp: str,
) -> list[str]:
    """The (unfolded) lines of one call's event; ``service`` and ``evaluator``: their names."""
    uid = hashlib.sha256(
        f"{spec.name}|{spec.seed}|{c.scheduled_at.isoformat()}|{c.service}|{c.number}".encode()
    ).hexdigest()[:32]
    return [
        "BEGIN:VEVENT",
        f"UID:{uid}@decroche",
        f"DTSTAMP:{stamp}",
        f"DTSTART:{_utc(c.scheduled_at)}",
        f"DTEND:{_utc(c.scheduled_at + timedelta(minutes=spec.call_minutes))}",
        f"SUMMARY:{_escape(f'Appel mystère — {service}')}",
        f"LOCATION:{_escape(f'tel:{c.number}')}",
        f"DESCRIPTION:{_escape(chr(10).join(description))}",
        *([f"URL:{link}"] if link is not None else []),
        f'ATTENDEE;CN="{_param(evaluator)}":mailto:{c.evaluator}',
        "CATEGORIES:Appel mystère",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        f"DESCRIPTION:{_escape(f'Appel mystère — {service}')}",
        "END:VALARM",
        "END:VEVENT",
    ]
