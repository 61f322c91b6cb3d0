"""A plan as iCalendar (RFC 5545: CRLF, folding at 75 octets, escaped text) and CSV."""

from __future__ import annotations

from datetime import UTC, datetime

from campaigns.plan.formats import to_csv, to_ics
from campaigns.plan.planner import plan_campaign
from campaigns.spec import parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.model import load_municipality
from tests.campaigns.web.test_campaigns_api import body
from tests.conftest import TEST_CONFIG


def unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_ics_is_folded_escaped_and_complete() -> None:
    m = load_municipality(TEST_CONFIG)
    long_question = "Bonjour, je voudrais savoir ; comment faire une pré-demande, " * 3
    spec = parse_campaign(
        body(scenarios=[{"id": "long", "question": long_question, "expected": "Rendez-vous"}]),
        "x",
        m,
    )
    calls = plan_campaign(spec, Calendar(m)).calls
    stamp = datetime(2026, 12, 1, tzinfo=UTC)
    ics = to_ics(spec, calls, names={"accueil": "Accueil"}, stamp=stamp)
    assert ics.endswith("END:VCALENDAR\r\n")
    assert "\n" not in ics.replace("\r\n", "")
    raw = ics.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in raw)
    assert any(line.startswith(" ") for line in raw)  # the description had to be folded
    lines = unfold(ics)
    assert lines.count("BEGIN:VEVENT") == len(calls) == 10
    assert "DTSTAMP:20261201T000000Z" in lines
    first = calls[0]
    start = first.scheduled_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    assert f"DTSTART:{start}" in lines
    description = next(line for line in lines if line.startswith("DESCRIPTION:Numéro"))
    assert "Scénario : Bonjour\\, je voudrais savoir \\; comment faire" in description
    assert "\\nRéponse attendue : Rendez-vous" in description
    uids = [line for line in lines if line.startswith("UID:")]
    assert len(set(uids)) == len(uids)
    assert to_ics(spec, calls, names={"accueil": "Accueil"}, stamp=stamp) == ics


def test_ics_lines_cannot_be_forged_by_a_name_or_a_scenario() -> None:
    m = load_municipality(TEST_CONFIG)
    forged = "Vos horaires ?\rEND:VEVENT\r\nBEGIN:VEVENT\x0bX"
    evaluators = [
        {"name": 'Claire "CM"\r\nATTENDEE:mailto:x@y', "email": "claire.martin@ville.test"},
    ]
    spec = parse_campaign(
        body(scenarios=[{"id": "h", "question": forged}], evaluators=evaluators), "x", m
    )
    calls = plan_campaign(spec, Calendar(m)).calls
    ics = to_ics(spec, calls, names={}, stamp=datetime(2026, 12, 1, tzinfo=UTC))
    body_text = ics.replace("\r\n", "")
    assert "\r" not in body_text
    assert "\n" not in body_text
    assert "\x0b" not in body_text
    lines = unfold(ics)
    assert lines.count("BEGIN:VEVENT") == lines.count("END:VEVENT") == len(calls)
    assert not any(line.startswith("ATTENDEE:") for line in lines)
    attendee = next(line for line in lines if line.startswith("ATTENDEE;"))
    assert attendee.startswith('ATTENDEE;CN="Claire CMATTENDEE:mailto:x@y":mailto:claire')
    assert any("Vos horaires ?\\nEND:VEVENT\\nBEGIN:VEVENT" in line for line in lines)


def test_csv_has_local_dates_and_times() -> None:
    m = load_municipality(TEST_CONFIG)
    spec = parse_campaign(body(), "x", m)
    calls = plan_campaign(spec, Calendar(m)).calls
    rows = to_csv(calls, m.tz).splitlines()
    assert rows[0] == (
        "scheduled_at,date,time,weekday,service,number,scenario,evaluator,mode,half_day,moment"
    )
    first = calls[0].scheduled_at.astimezone(m.tz)
    assert rows[1].startswith(
        f"{calls[0].scheduled_at.isoformat()},{first.date()},{first:%H:%M},{first.isoweekday()},"
    )
