"""Planner benchmark: 1,000 mystery calls over 13 weeks for 20 services.

Prints the time to plan (median of several runs, first run apart: it pays for imports and
the holiday tables), the peak memory of one run, and the plan's spread. Pure Python: no
database, no service. ``python bench/plan.py [--calls N] [--services S] [--weeks W]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from campaigns.plan.planner import plan_campaign
from campaigns.spec import parse_campaign
from service.municipality.calendar import Calendar
from service.municipality.model import Municipality, parse_municipality

HOURS = [
    {d: ["08:30-12:00", "13:30-17:30"] for d in ("mon", "tue", "wed", "thu", "fri")},
    {
        "mon": ["09:00-12:00", "14:00-17:00"],
        "tue": ["09:00-12:00"],
        "thu": ["10:00-19:00"],
        "fri": ["09:00-12:00", "14:00-16:30"],
    },
    {**{d: ["08:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}, "sat": ["09:00-12:00"]},
]


def municipality(services: int) -> Municipality:
    return parse_municipality(
        {
            "name": "Ville de Banc-d'Essai",
            "closures": ["2027-05-07"],
            "services": [
                {
                    "slug": f"service-{i:02d}",
                    "name": f"Service {i}",
                    "lines": [f"+3338755{i:04d}"],
                    "hours": HOURS[i % len(HOURS)],
                }
                for i in range(services)
            ],
        },
        "bench",
    )


def campaign(m: Municipality, calls: int, weeks: int) -> dict[str, Any]:
    start = date(2027, 4, 5)
    per, extra = divmod(calls, len(m.services))
    return {
        "name": "Banc d'essai",
        "grid": "accueil-telephonique",
        "starts_on": start.isoformat(),
        "ends_on": (start + timedelta(weeks=weeks) - timedelta(days=1)).isoformat(),
        "seed": 7,
        "min_gap_minutes": 120,
        "call_minutes": 15,
        "targets": [
            {"service": s.slug, "calls": per + (1 if i < extra else 0)}
            for i, s in enumerate(m.services)
        ],
        "scenarios": [{"id": f"s{i}", "question": f"Question {i} ?"} for i in range(6)],
        "evaluators": [
            {"name": f"Évaluateur {i}", "email": f"eval{i}@example.org"} for i in range(8)
        ]
        + [
            {
                "name": "Mi-temps",
                "email": "mi-temps@example.org",
                "availability": {"mon": ["08:00-12:00"], "thu": ["13:00-19:00"]},
            }
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--services", type=int, default=20)
    p.add_argument("--weeks", type=int, default=13)
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    m = municipality(args.services)
    spec = parse_campaign(campaign(m, args.calls, args.weeks), "bench", m)
    times = []
    plan = None
    for _ in range(args.runs + 1):
        t0 = time.perf_counter()
        plan = plan_campaign(spec, Calendar(m))
        times.append(time.perf_counter() - t0)
    assert plan is not None
    tracemalloc.start()
    plan_campaign(spec, Calendar(m))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    loads = Counter(c.evaluator for c in plan.calls)
    moments = Counter(c.moment for c in plan.calls)
    print(
        f"{len(plan.calls)} calls, {args.services} services, {args.weeks} weeks, "
        f"{len(spec.evaluators)} evaluators"
    )
    print(
        f"plan: median {statistics.median(times[1:]) * 1000:.0f} ms, "
        f"min {min(times[1:]) * 1000:.0f} ms, first run {times[0] * 1000:.0f} ms; "
        f"peak memory {peak / 1e6:.1f} MB (tracemalloc)"
    )
    print(f"evaluator loads: {sorted(loads.values())}")
    print("moments: " + ", ".join(f"{k} {v}" for k, v in sorted(moments.items())))


if __name__ == "__main__":
    main()
