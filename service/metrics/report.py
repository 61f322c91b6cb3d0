"""The Engagement 8 report: per service, the unknown-line row, the total, breakdowns.

The same function feeds the API, the CLI (table, JSON, CSV, XLSX) and the pages, so they
all show the same figures; every report states the period, the policy values it used and
the definitions.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import asyncpg

from service.metrics.definitions import DEFINITIONS_FR, Counts, figures
from service.metrics.model import (
    AffluenceReport,
    BreakdownReport,
    Engagement8Report,
    Period,
    PolicyStatement,
    ServiceRow,
    policy_values,
)
from service.metrics.queries import UNKNOWN, affluence_rows, figure_rows
from service.metrics.rollup import fingerprint
from service.municipality.model import Municipality, Policy

UNKNOWN_NAME = "Ligne inconnue"


def _policy(m: Municipality, service: str | None) -> Policy:
    """The policy a group of calls is judged by: its service's, or the default one."""
    svc = m.service(service) if service else None
    return svc.policy if svc else m.policy


def _period(m: Municipality, first: date, last: date) -> Period:
    return {"from": first.isoformat(), "to": last.isoformat(), "timezone": m.timezone}


def _counts(row: asyncpg.Record | None) -> Counts:
    if row is None:
        return Counts()
    return Counts(
        received=row["received"],
        out_of_hours=row["out_of_hours"],
        short_abandoned=row["short_abandoned"],
        answered=row["answered"],
        answered_within=row["answered_within"],
        asa_s=_num(row["asa_s"]),
        wait_p90_s=_num(row["wait_p90_s"]),
        max_wait_s=_num(row["max_wait_s"]),
    )


def _num(v: Decimal | float | None) -> float | None:
    return None if v is None else round(float(v), 3)


def policy_statement(m: Municipality) -> PolicyStatement:
    """The policy in force: defaults and each service's overrides."""
    overrides: dict[str, dict[str, float]] = {}
    for s in m.services:
        diff = {k: v for k, v in s.policy.as_dict().items() if m.policy.as_dict()[k] != v}
        if diff:
            overrides[s.slug] = diff
    return {**policy_values(m.policy), "overrides": overrides}


async def engagement8(
    conn: asyncpg.Connection | asyncpg.Pool,
    m: Municipality,
    first: date,
    last: date,
    service: str | None = None,
) -> Engagement8Report:
    """Figures per service (configuration order), the unknown-line row, and the total."""
    rows = await figure_rows(conn, m, first, last, fingerprint(m), "service", service)
    by_key = {r["key"]: r for r in rows if not r["is_total"]}
    total_row = next((r for r in rows if r["is_total"]), None)
    services: list[ServiceRow] = []
    for s in m.services:
        if service is not None and s.slug != service:
            continue
        services.append(
            {
                "service": s.slug,
                "name": s.name,
                "policy": policy_values(s.policy),
                **figures(_counts(by_key.get(s.slug)), s.policy),
            }
        )
    if UNKNOWN in by_key:
        services.append(
            {
                "service": None,
                "name": UNKNOWN_NAME,
                "policy": None,
                **figures(_counts(by_key[UNKNOWN]), m.policy),
            }
        )
    return {
        "period": _period(m, first, last),
        "policy": policy_statement(m),
        "services": services,
        "total": figures(_counts(total_row), _policy(m, service)),
        "definitions": DEFINITIONS_FR,
    }


async def breakdown(
    conn: asyncpg.Connection | asyncpg.Pool,
    m: Municipality,
    first: date,
    last: date,
    by: str,
    service: str | None = None,
) -> BreakdownReport:
    """Figures per day, ISO week, hour of day, line or agent (keys sorted), and the total."""
    rows = await figure_rows(conn, m, first, last, fingerprint(m), by, service)
    policy = _policy(m, service)
    keyed = sorted((r for r in rows if not r["is_total"]), key=lambda r: r["key"])
    total_row = next((r for r in rows if r["is_total"]), None)
    return {
        "period": _period(m, first, last),
        "policy": policy_statement(m),
        "by": by,
        "rows": [{"key": r["key"] or None, **figures(_counts(r), policy)} for r in keyed],
        "total": figures(_counts(total_row), policy),
    }


def slot_label(slot: int) -> str:
    return f"{slot // 2:02d}:{30 * (slot % 2):02d}"


async def affluence(
    conn: asyncpg.Connection | asyncpg.Pool,
    m: Municipality,
    first: date,
    last: date,
    service: str | None = None,
) -> AffluenceReport:
    """Received and lost calls by weekday (1 = Monday) × half-hour, local time."""
    rows = await affluence_rows(conn, m, first, last, service)
    return {
        "period": _period(m, first, last),
        "service": service,
        "cells": [
            {
                "weekday": r["weekday"],
                "slot": slot_label(r["slot"]),
                "received": r["received"],
                "lost": r["lost"],
            }
            for r in rows
        ],
    }
