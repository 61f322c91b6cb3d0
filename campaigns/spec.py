"""The campaign file (TOML, or the same structure as JSON through the API), validated (pure).

The contract is ``shared/spec/campaigns.md`` (« Campaign file »). Checked against the
municipality: every target names a configured service, and gets the service's first line
when it gives no number. A fault raises a :class:`ConfigError` naming the file and the key,
e.g. ``printemps.toml: targets[2].calls: expected a whole number, got str``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from service.accounts.model import normalise_email
from service.digest.weeks import FIRST_YEAR, LAST_YEAR
from service.municipality.model import E164_RE, SLUG_RE, Municipality
from service.municipality.tables import (
    WEEKDAYS,
    ConfigError,
    Interval,
    TableReader,
    load_toml,
    read_dates,
    read_hours,
)

MODES = ("manual", "assisted", "probe")  # probe: a closed-hours call placed by Twilio
MAX_DAYS = 366
MAX_CALLS = 20_000


class TargetJson(TypedDict):
    service: str
    number: str
    calls: int


class ScenarioJson(TypedDict):
    id: str
    question: str
    expected: str
    services: list[str]  # empty: suits every target


class EvaluatorJson(TypedDict):
    name: str
    email: str
    phone: NotRequired[str]
    availability: NotRequired[dict[str, list[str]]]  # weekday → ["09:00-12:00", …]
    unavailable: NotRequired[list[str]]  # ISO dates


class CampaignSpecJson(TypedDict):
    """``CampaignSpec.as_dict``: the JSON form stored with a campaign (``campaigns.spec``)."""

    name: str
    description: str
    grid: str
    starts_on: str
    ends_on: str
    seed: int
    mode: str
    min_gap_minutes: int
    call_minutes: int
    targets: list[TargetJson]
    scenarios: list[ScenarioJson]
    evaluators: list[EvaluatorJson]
    grid_version: NotRequired[int]


@dataclass(frozen=True)
class Target:
    service: str
    number: str
    calls: int

    @property
    def key(self) -> str:
        """How a planned call names its target: the service, and the number when the
        service has several targets."""
        return f"{self.service} {self.number}"


@dataclass(frozen=True)
class Scenario:
    id: str
    question: str
    expected: str = ""
    services: tuple[str, ...] = ()  # empty: suits every target

    def suits(self, service: str) -> bool:
        return not self.services or service in self.services


@dataclass(frozen=True)
class Evaluator:
    name: str
    email: str
    phone: str | None = None
    availability: Mapping[int, tuple[Interval, ...]] | None = None  # None: any opening time
    unavailable: frozenset[date] = frozenset()


@dataclass(frozen=True)
class CampaignSpec:
    """A validated campaign: what to plan."""

    name: str
    grid: str
    grid_version: int | None
    starts_on: date
    ends_on: date
    seed: int
    mode: str
    min_gap_minutes: int
    call_minutes: int
    targets: tuple[Target, ...]
    scenarios: tuple[Scenario, ...]
    evaluators: tuple[Evaluator, ...]
    description: str = ""

    @property
    def total_calls(self) -> int:
        return sum(t.calls for t in self.targets)

    def as_dict(self) -> CampaignSpecJson:
        """The JSON form, which :func:`parse_campaign` reads back to the same spec."""
        out: CampaignSpecJson = {
            "name": self.name,
            "description": self.description,
            "grid": self.grid,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat(),
            "seed": self.seed,
            "mode": self.mode,
            "min_gap_minutes": self.min_gap_minutes,
            "call_minutes": self.call_minutes,
            "targets": [
                {"service": t.service, "number": t.number, "calls": t.calls} for t in self.targets
            ],
            "scenarios": [
                {
                    "id": s.id,
                    "question": s.question,
                    "expected": s.expected,
                    "services": list(s.services),
                }
                for s in self.scenarios
            ],
            "evaluators": [_evaluator_dict(e) for e in self.evaluators],
        }
        if self.grid_version is not None:
            out["grid_version"] = self.grid_version
        return out


def _fmt_time(t: time) -> str:
    return "24:00" if t == time.max else t.strftime("%H:%M")


def _evaluator_dict(e: Evaluator) -> EvaluatorJson:
    out: EvaluatorJson = {"name": e.name, "email": e.email}
    if e.phone:
        out["phone"] = e.phone
    if e.availability is not None:
        out["availability"] = {
            WEEKDAYS[wd]: [f"{_fmt_time(a)}-{_fmt_time(b)}" for a, b in ivs]
            for wd, ivs in sorted(e.availability.items())
        }
    if e.unavailable:
        out["unavailable"] = sorted(d.isoformat() for d in e.unavailable)
    return out


def load_campaign(path: str | Path, municipality: Municipality) -> CampaignSpec:
    return parse_campaign(load_toml(path), str(path), municipality)


def parse_campaign(data: Mapping[str, Any], path: str, m: Municipality) -> CampaignSpec:
    """Validate a campaign's structure against the municipality ``m``."""
    top = TableReader(dict(data), path, "")
    name = top.require("name", str).strip()
    if not name:
        raise top.fail("name", "must not be empty")
    grid = top.require("grid", str)
    if not SLUG_RE.match(grid):
        raise top.fail("grid", f"{grid!r} is not a grid slug like 'accueil-telephonique'")
    grid_version = top.get("grid_version", int)
    starts_on = _date(top, "starts_on")
    ends_on = _date(top, "ends_on")
    if ends_on < starts_on:
        raise top.fail("ends_on", f"{ends_on} is before starts_on ({starts_on})")
    if (ends_on - starts_on).days >= MAX_DAYS:
        raise top.fail("ends_on", f"a campaign lasts at most {MAX_DAYS} days")
    # Without a seed, the name is the seed: the same file still gives the same plan.
    seed = top.get("seed", int, zlib.crc32(name.encode()))
    mode = top.get("mode", str, "manual")
    if mode not in MODES:
        raise top.fail("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    min_gap = _minutes(top, "min_gap_minutes", 120, 0, 60 * 24 * 30)
    call_minutes = _minutes(top, "call_minutes", 15, 1, 240)
    targets = _targets(top, path, m)
    scenarios = _scenarios(top, path, m)
    evaluators = _evaluators(top, path, mode)
    description = top.get("description", str, "")
    top.finish()
    return CampaignSpec(
        name=name,
        grid=grid,
        grid_version=grid_version,
        starts_on=starts_on,
        ends_on=ends_on,
        seed=seed,
        mode=mode,
        min_gap_minutes=min_gap,
        call_minutes=call_minutes,
        targets=targets,
        scenarios=scenarios,
        evaluators=evaluators,
        description=description,
    )


def _date(r: TableReader, name: str) -> date:
    value = r.require(name, (date, str))
    if isinstance(value, date) and not hasattr(value, "hour"):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value))
        except ValueError:
            raise r.fail(name, f"{value!r} is not a date (expected YYYY-MM-DD)") from None
    # The calendar (holidays, DST) is known for these years only; beyond, planning overflows.
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise r.fail(name, f"{day} is out of range (years {FIRST_YEAR} to {LAST_YEAR})")
    return day


def _minutes(r: TableReader, name: str, default: int, lo: int, hi: int) -> int:
    value = r.get(name, int, default)
    if not lo <= value <= hi:
        raise r.fail(name, f"{value} is out of range ({lo} to {hi} minutes)")
    return int(value)


def _targets(top: TableReader, path: str, m: Municipality) -> tuple[Target, ...]:
    raw = top.require("targets", list)
    if not raw:
        raise top.fail("targets", "at least one [[targets]] entry is required")
    out: list[Target] = []
    for i, entry in enumerate(raw):
        r = TableReader(entry, path, f"targets[{i}]")
        slug = r.require("service", str)
        svc = m.service(slug)
        if svc is None:
            known = ", ".join(s.slug for s in m.services)
            raise r.fail("service", f"unknown service {slug!r} (known: {known})")
        number = r.get("number", str)
        if number is None:
            if not svc.lines:
                raise r.fail("number", f"service {slug!r} has no line: give the number to call")
            number = svc.lines[0]
        elif not E164_RE.match(number):
            raise r.fail("number", f"{number!r} is not an E.164 number like '+33387550101'")
        calls = r.require("calls", int)
        if not 1 <= calls <= MAX_CALLS:
            raise r.fail("calls", f"{calls} is out of range (1 to {MAX_CALLS})")
        r.finish()
        target = Target(service=slug, number=number, calls=calls)
        if any(t.key == target.key for t in out):
            raise r.fail("number", f"{slug} {number} is already a target; add up its calls")
        out.append(target)
    total = sum(t.calls for t in out)
    if total > MAX_CALLS:
        raise top.fail("targets", f"{total} calls in all: a campaign plans at most {MAX_CALLS}")
    return tuple(out)


def _scenarios(top: TableReader, path: str, m: Municipality) -> tuple[Scenario, ...]:
    out: list[Scenario] = []
    for i, entry in enumerate(top.get("scenarios", list, [])):
        r = TableReader(entry, path, f"scenarios[{i}]")
        sid = r.require("id", str)
        if not SLUG_RE.match(sid.replace("_", "-")):
            raise r.fail("id", f"{sid!r} must be lowercase letters, digits, dashes or underscores")
        if any(s.id == sid for s in out):
            raise r.fail("id", f"duplicate scenario {sid!r}")
        question = r.require("question", str).strip()
        if not question:
            raise r.fail("question", "must not be empty")
        services = r.strings("services")
        for j, slug in enumerate(services):
            if m.service(slug) is None:
                raise r.fail(f"services[{j}]", f"unknown service {slug!r}")
        out.append(
            Scenario(
                id=sid,
                question=question,
                expected=r.get("expected", str, "").strip(),
                services=tuple(services),
            )
        )
        r.finish()
    return tuple(out)


def _evaluators(top: TableReader, path: str, mode: str) -> tuple[Evaluator, ...]:
    raw = top.require("evaluators", list)
    if not raw:
        raise top.fail("evaluators", "at least one [[evaluators]] entry is required")
    out: list[Evaluator] = []
    for i, entry in enumerate(raw):
        r = TableReader(entry, path, f"evaluators[{i}]")
        name = r.require("name", str).strip()
        if not name:
            raise r.fail("name", "must not be empty")
        try:
            email = normalise_email(r.require("email", str))
        except ValueError as exc:
            raise r.fail("email", str(exc)) from None
        if any(e.email == email for e in out):
            raise r.fail("email", f"{email} is already an evaluator")
        phone = r.get("phone", str)
        if phone is not None and not E164_RE.match(phone):
            raise r.fail("phone", f"{phone!r} is not an E.164 number like '+33600000001'")
        if phone is None and mode == "assisted":
            raise r.fail("phone", "needed in assisted mode (Twilio calls the evaluator first)")
        availability = None
        if "availability" in r.data:
            availability = read_hours(
                r.get("availability", dict), path, f"evaluators[{i}].availability"
            )
            if not availability:
                raise r.fail("availability", "gives no time at all: remove it or add hours")
        out.append(
            Evaluator(
                name=name,
                email=email,
                phone=phone,
                availability=availability,
                unavailable=read_dates(r, "unavailable"),
            )
        )
        r.finish()
    return tuple(out)


def describe_error(exc: ConfigError) -> dict[str, str]:
    """A campaign fault as the API's JSON error (the key is the field)."""
    return {"error": exc.problem, "field": exc.key} if exc.key else {"error": exc.problem}
