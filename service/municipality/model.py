"""The municipality described by the TOML configuration file: services, lines, hours, policy.

Parsing is strict and pure: every unknown key, bad time, overlapping interval, line claimed
twice or missing slug raises a :class:`ConfigError` naming the file, the key and the fault.
The contract is ``shared/spec/config.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.accounts.model import normalise_email
from service.municipality.tables import WEEKDAYS as WEEKDAYS
from service.municipality.tables import ConfigError as ConfigError
from service.municipality.tables import Interval as Interval
from service.municipality.tables import TableReader, load_toml, read_dates, read_hours

HOLIDAY_ZONES = ("metropole", "alsace-moselle")
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")
SEND_AT_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun) (\d{2}):(\d{2})$")


@dataclass(frozen=True)
class Policy:
    """Engagement 8 thresholds and targets (``spec/engagement8.md``, « The policy »)."""

    answer_within_s: float = 25
    short_abandon_s: float = 5
    target_answer_rate: float = 0.85
    target_service_level: float = 0.80

    def as_dict(self) -> dict[str, float]:
        return {
            "answer_within_s": self.answer_within_s,
            "short_abandon_s": self.short_abandon_s,
            "target_answer_rate": self.target_answer_rate,
            "target_service_level": self.target_service_level,
        }


@dataclass(frozen=True)
class ServiceConfig:
    """One municipal service: its lines and queues, opening hours, closures and policy."""

    slug: str
    name: str
    lines: tuple[str, ...]
    queues: tuple[str, ...]
    hours: Mapping[int, tuple[Interval, ...]]  # weekday (Monday = 0) → sorted intervals
    closures: frozenset[date]
    policy: Policy
    digest_recipients: tuple[str, ...] = ()


@dataclass(frozen=True)
class DigestConfig:
    recipients: tuple[str, ...] = ()
    send_weekday: int = 0
    send_time: time = time(7, 30)


@dataclass(frozen=True)
class PrivacyConfig:
    keep_numbers_days: int = 30
    keep_recordings_days: int = 90


@dataclass(frozen=True)
class Municipality:
    """Everything the configuration file says, validated."""

    path: str
    name: str
    timezone: str
    holiday_zone: str
    whit_monday_open: bool
    closures: frozenset[date]
    policy: Policy
    services: tuple[ServiceConfig, ...]
    digest: DigestConfig = field(default_factory=DigestConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def service(self, slug: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.slug == slug), None)

    def service_for(self, line: str | None, queue: str | None) -> ServiceConfig | None:
        """The service owning a queue (checked first: it is the more precise) or a line."""
        for svc in self.services:
            if queue is not None and queue in svc.queues:
                return svc
        for svc in self.services:
            if line is not None and line in svc.lines:
                return svc
        return None


def load_municipality(path: str | Path) -> Municipality:
    """Read and validate a configuration file; raise :class:`ConfigError` on any fault."""
    return parse_municipality(load_toml(path), str(path))


def parse_municipality(data: Mapping[str, Any], path: str) -> Municipality:
    """Validate the decoded TOML of a configuration file."""
    top = TableReader(dict(data), path, "")
    name = top.get("name", str, "Mairie")
    tz_name = top.get("timezone", str, "Europe/Paris")
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise top.fail("timezone", f"unknown time zone {tz_name!r} (e.g. 'Europe/Paris')") from None
    zone = top.get("holiday_zone", str, "metropole")
    if zone not in HOLIDAY_ZONES:
        raise top.fail("holiday_zone", f"{zone!r} is not one of {', '.join(HOLIDAY_ZONES)}")
    whit = top.get("whit_monday_open", bool, False)
    closures = read_dates(top, "closures")
    policy = _policy(top.get("policy", dict, {}), path, "policy", Policy())
    raw_services = top.get("services", list, [])
    if not raw_services:
        raise top.fail("services", "at least one [[services]] entry is required")
    services = tuple(
        _service(s, path, f"services[{i}]", policy) for i, s in enumerate(raw_services)
    )
    digest = _digest(top.get("digest", dict, {}), path)
    privacy = _privacy(top.get("privacy", dict, {}), path)
    top.finish()
    _check_unique(services, path)
    return Municipality(
        path=path,
        name=name,
        timezone=tz_name,
        holiday_zone=zone,
        whit_monday_open=whit,
        closures=closures,
        policy=policy,
        services=services,
        digest=digest,
        privacy=privacy,
    )


def _policy(data: Any, path: str, key: str, base: Policy) -> Policy:
    r = TableReader(data, path, key)
    values: dict[str, float] = {}
    for name in ("answer_within_s", "short_abandon_s"):
        v = r.get(name, (int, float))
        if v is not None:
            if v < 0 or v > 3600:
                raise r.fail(name, f"{v} is out of range (0 to 3600 seconds)")
            values[name] = float(v)
    for name in ("target_answer_rate", "target_service_level"):
        v = r.get(name, (int, float))
        if v is not None:
            if not 0 <= v <= 1:
                raise r.fail(name, f"{v} is out of range (a share between 0 and 1, e.g. 0.85)")
            values[name] = float(v)
    r.finish()
    merged = {**base.as_dict(), **values}
    return Policy(**merged)


def _service(data: Any, path: str, key: str, default_policy: Policy) -> ServiceConfig:
    r = TableReader(data, path, key)
    slug = r.require("slug", str)
    if not SLUG_RE.match(slug):
        raise r.fail("slug", f"{slug!r} must be lowercase letters, digits and dashes ([a-z0-9-]+)")
    name = r.get("name", str, slug)
    lines = r.strings("lines")
    for i, line in enumerate(lines):
        if not E164_RE.match(line):
            raise r.fail(f"lines[{i}]", f"{line!r} is not an E.164 number like '+33387550101'")
    queues = r.strings("queues")
    closures = read_dates(r, "closures")
    hours = read_hours(r.get("hours", dict, {}), path, f"{key}.hours")
    policy = _policy(r.get("policy", dict, {}), path, f"{key}.policy", default_policy)
    digest = TableReader(r.get("digest", dict, {}), path, f"{key}.digest")
    recipients = _addresses(digest, "recipients")
    digest.finish()
    r.finish()
    return ServiceConfig(
        slug=slug,
        name=name,
        lines=tuple(lines),
        queues=tuple(queues),
        hours=hours,
        closures=closures,
        policy=policy,
        digest_recipients=recipients,
    )


def _check_unique(services: tuple[ServiceConfig, ...], path: str) -> None:
    seen_slug: dict[str, int] = {}
    seen_line: dict[str, str] = {}
    seen_queue: dict[str, str] = {}
    for i, svc in enumerate(services):
        if svc.slug in seen_slug:
            raise ConfigError(
                path,
                f"services[{i}].slug",
                f"{svc.slug!r} is already the slug of services[{seen_slug[svc.slug]}]",
            )
        seen_slug[svc.slug] = i
        _claim(path, f"services[{i}].lines", svc.slug, svc.lines, seen_line, "{}")
        _claim(path, f"services[{i}].queues", svc.slug, svc.queues, seen_queue, "{!r}")


def _claim(
    path: str, key: str, slug: str, names: tuple[str, ...], owners: dict[str, str], shown: str
) -> None:
    """Record that ``slug`` owns ``names``; a name owned by two services is refused."""
    for name in names:
        if name in owners:
            raise ConfigError(
                path, key, f"{shown.format(name)} is claimed by both {owners[name]!r} and {slug!r}"
            )
        owners[name] = slug


def _addresses(r: TableReader, key: str) -> tuple[str, ...]:
    """A list of e-mail addresses, lower-cased, each checked (one address a string)."""
    out = []
    for i, text in enumerate(r.strings(key)):
        try:
            out.append(normalise_email(text))
        except ValueError as exc:
            raise r.fail(f"{key}[{i}]", f"{exc} (one address per string)") from None
    return tuple(dict.fromkeys(out))


def _digest(data: Any, path: str) -> DigestConfig:
    r = TableReader(data, path, "digest")
    recipients = _addresses(r, "recipients")
    send_at = r.get("send_at", str, "mon 07:30")
    m = SEND_AT_RE.match(send_at)
    if not m or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise r.fail("send_at", f"{send_at!r} is not like 'mon 07:30'")
    r.finish()
    return DigestConfig(
        recipients=recipients,
        send_weekday=WEEKDAYS.index(m.group(1)),
        send_time=time(int(m.group(2)), int(m.group(3))),
    )


def _privacy(data: Any, path: str) -> PrivacyConfig:
    r = TableReader(data, path, "privacy")
    out: dict[str, int] = {}
    for name in ("keep_numbers_days", "keep_recordings_days"):
        v = r.get(name, int)
        if v is not None:
            if v < 1 or v > 3650:
                raise r.fail(name, f"{v} is out of range (1 to 3650 days)")
            out[name] = v
    r.finish()
    return PrivacyConfig(**out)
