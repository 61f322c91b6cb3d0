"""Four weeks of generated calls around the DST change of October 2026, and the truth the
digest must agree with, computed here one call at a time."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from service.demo.traffic import SimCall
from service.digest.weeks import IsoWeek
from service.municipality.calendar import Calendar
from service.municipality.model import DigestConfig, Municipality, load_municipality
from tests.conftest import TEST_CONFIG
from tests.service.metrics.test_engagement8 import PARIS, call

WEEK = IsoWeek(2026, 43)  # Monday 19 – Sunday 25 October 2026: summer time ends on Sunday
ACCUEIL, ETAT_CIVIL, ASTREINTE, UNKNOWN = (
    "+33100000001", "+33100000002", "+33100000009", "+33999999999"
)  # fmt: skip
DGS, MAIRE = "dgs@ville.test", "maire@ville.test"
CHEF_EC = "chef.etat-civil@ville.test"


def municipality(**digest: Any) -> Municipality:
    """The test town with digest recipients: two global, one head of état civil."""
    m = load_municipality(TEST_CONFIG)
    services = tuple(
        replace(s, digest_recipients=(CHEF_EC,)) if s.slug == "etat-civil" else s
        for s in m.services
    )
    cfg = DigestConfig(recipients=(DGS, MAIRE), **digest)
    return replace(m, services=services, digest=cfg)


def local(d: date, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, mi, s, tzinfo=PARIS).astimezone(UTC)


def weeks_of_calls(seed: int = 7) -> list[SimCall]:
    """Calls of the digest's week and the three before: accueil and état civil in and
    around their hours (état civil worse), astreinte around the clock, an unknown line."""
    rng = random.Random(seed)
    calls = []
    first = WEEK.shift(-3).monday
    for n in range(28):
        day = first + timedelta(days=n)
        for line, per_day, p_answer, waits in (
            (ACCUEIL, 14, 0.97, [2, 6, 8, 10, 12, 15, 20, 22, 24, 40]),
            (ETAT_CIVIL, 12, 0.7, [2, 8, 15, 30, 70]),
        ):
            for _ in range(per_day):
                t = local(day, rng.randint(8, 17), rng.randint(0, 59), rng.randint(0, 59))
                calls.append(call(line, t, rng.random() < p_answer, rng.choice(waits)))
        for h in (1, 9, 15, 22):
            calls.append(call(ASTREINTE, local(day, h, rng.randint(0, 59)), True, 10))
    # The edges of the DST week: its last second, the two 02:30s of the Sunday, the next week.
    sunday = WEEK.sunday
    calls += [
        call(ASTREINTE, local(sunday, 23, 59, 59), False, 40),
        call(ASTREINTE, datetime(2026, 10, 25, 0, 30, tzinfo=UTC), True, 12),  # 02:30 CEST
        call(ASTREINTE, datetime(2026, 10, 25, 1, 30, tzinfo=UTC), False, 30),  # 02:30 CET
        call(ASTREINTE, local(sunday + timedelta(days=1), 0, 0, 1), False, 40),
        call(UNKNOWN, local(WEEK.monday, 10), True, 4),
    ]
    return calls


def truth_half_hours(
    calls: list[SimCall], m: Municipality, week: IsoWeek
) -> dict[str, list[tuple[date, int, int, int]]]:
    """Per service, its (day, slot, offered, lost) with a lost call, as the digest ranks
    them: most lost first, then the lower answer rate, then the earlier."""
    cal = Calendar(m)
    cells: dict[tuple[str, date, int], list[int]] = defaultdict(lambda: [0, 0])
    for c in calls:
        svc = m.service_for(c.line, None)
        t = c.started_at.astimezone(m.tz)
        if svc is None or not (week.monday <= t.date() <= week.sunday):
            continue
        if not cal.in_hours(svc, c.started_at):
            continue
        if not c.answered and c.wait_s < svc.policy.short_abandon_s:
            continue
        cell = cells[(svc.slug, t.date(), t.hour * 2 + (t.minute >= 30))]
        cell[0] += 1
        cell[1] += 0 if c.answered else 1
    out: dict[str, list[tuple[date, int, int, int]]] = defaultdict(list)
    for (slug, day, slot), (offered, lost) in cells.items():
        if lost:
            out[slug].append((day, slot, offered, lost))
    for rows in out.values():
        rows.sort(key=lambda r: (-r[3], (r[2] - r[3]) / r[2], r[0], r[1]))
    return out
