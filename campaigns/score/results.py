"""A campaign's results (pure): per campaign, service, section, item and stratum.

What each figure means (also given to people, in French, in ``DEFINITIONS_FR``):

- a planned call is **done** when it has an evaluation; **missed** when it was marked
  missed, or its time passed more than a day ago without an evaluation; **cancelled** when
  the campaign was cancelled before it was done; otherwise it is **to come**;
- the **mean score** is over the done calls, out of the grid's scale, with Student's 95 %
  interval (kept inside the scale); the **pass rate** is the share of done calls passed
  (score ≥ pass mark and no critical item failed), with Wilson's 95 % interval;
  **excellent** is the share of done calls at or above the excellence mark;
- a figure over fewer than ``MIN_CALLS`` done calls is flagged « too few calls »: it is
  shown, but says little;
- the **previous campaign** is the latest earlier campaign on the same grid (same slug)
  with at least one evaluation; its figures are compared with these.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.grids.model import Grid
from campaigns.score.model import (
    Comparison,
    EvaluatorFigures,
    Figures,
    ItemFigures,
    Results,
    SectionFigures,
    ServiceFigures,
    Strata,
    StratumFigures,
)
from campaigns.score.stats import mean_interval, wilson

MIN_CALLS = 5
MISSED_AFTER = timedelta(hours=24)
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
HALF_DAYS_FR = {"morning": "matin", "afternoon": "après-midi"}
MOMENTS_FR = {
    "opening": "quart d'heure d'ouverture",
    "lunch": "abords de la pause de midi",
    "closing": "quart d'heure de fermeture",
    "core": "reste de la journée",
}
DEFINITIONS_FR = {
    "done": "Réalisé : l'appel a été évalué.",
    "missed": "Manqué : marqué comme manqué, ou son heure est passée depuis plus d'un jour "
    "sans évaluation.",
    "mean_score": "Note moyenne : moyenne des notes des appels réalisés, sur l'échelle de la "
    "grille, avec son intervalle de confiance à 95 % (loi de Student).",
    "pass_rate": "Taux de réussite : part des appels réalisés dont la note atteint le seuil "
    "attendu sans critère éliminatoire échoué, avec son intervalle de confiance à 95 % "
    "(intervalle de Wilson).",
    "excellent_share": "Excellence : part des appels réalisés dont la note atteint le seuil "
    "d'excellence.",
    "too_few": f"Moins de {MIN_CALLS} appels réalisés : le chiffre est donné à titre "
    "indicatif, trop peu d'appels pour conclure.",
    "previous": "Campagne précédente : la dernière campagne antérieure sur la même grille.",
}


@dataclass(frozen=True)
class CallRow:
    id: int
    service: str
    number: str
    scheduled_at: datetime
    status: str  # as stored: planned, missed, cancelled
    half_day: str
    moment: str
    evaluator: str
    scenario: str | None = None


@dataclass(frozen=True)
class EvalRow:
    call_id: int
    score: float
    passed: bool
    excellent: bool
    sections: Mapping[str, float | None]
    values: Mapping[str, float | None]
    critical_failed: Sequence[str] = field(default_factory=tuple)

    @classmethod
    def of(cls, e: Mapping[str, Any]) -> EvalRow:
        """From a stored evaluation (``queries.evaluations_of``)."""
        return cls(
            call_id=e["mystery_call_id"],
            score=e["score"],
            passed=e["passed"],
            excellent=e["excellent"],
            sections=e["sections"],
            values=e["item_values"],
            critical_failed=list(e["critical_failed"]),
        )


def state(status: str, scheduled_at: datetime, evaluated: bool, now: datetime) -> str:
    """done, missed, cancelled or planned (to come) — see the module's definitions."""
    if evaluated:
        return "done"
    if status in ("missed", "cancelled"):
        return status
    if scheduled_at + MISSED_AFTER < now:
        return "missed"
    return "planned"


def state_of(call: CallRow, evaluated: bool, now: datetime) -> str:
    return state(call.status, call.scheduled_at, evaluated, now)


def figures(
    calls: Sequence[CallRow], evals: Mapping[int, EvalRow], now: datetime, scale: float
) -> Figures:
    """The figures of a set of calls (scores out of ``scale``)."""
    states = Counter(state_of(c, c.id in evals, now) for c in calls)
    done = [evals[c.id] for c in calls if c.id in evals]
    mean, low, high = mean_interval([e.score for e in done], (0, scale))
    rate, rlow, rhigh = wilson(sum(e.passed for e in done), len(done))
    return {
        "planned": len(calls),
        "done": states["done"],
        "missed": states["missed"],
        "to_come": states["planned"],
        "cancelled": states["cancelled"],
        "mean_score": _r(mean),
        "mean_score_low": _r(low),
        "mean_score_high": _r(high),
        "pass_rate": _r(rate),
        "pass_rate_low": _r(rlow),
        "pass_rate_high": _r(rhigh),
        "excellent_share": _r(sum(e.excellent for e in done) / len(done)) if done else None,
        "too_few": len(done) < MIN_CALLS,
    }


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _by(
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    now: datetime,
    key: Callable[[CallRow], str | int],
    keys: Sequence[tuple[str | int, str]],
    scale: float,
) -> list[StratumFigures]:
    out: list[StratumFigures] = []
    for k, label in keys:
        group = [c for c in calls if key(c) == k]
        if group:
            out.append({"key": k, "label": label, **figures(group, evals, now, scale)})
    return out


def section_figures(grid: Grid, done: Sequence[EvalRow]) -> list[SectionFigures]:
    out: list[SectionFigures] = []
    for s in grid.sections:
        values = [e.sections[s.id] for e in done if e.sections.get(s.id) is not None]
        mean, low, high = mean_interval([v for v in values if v is not None], (0, grid.scale))
        out.append(
            {
                "id": s.id,
                "title": s.title,
                "n": len(values),
                "mean_score": _r(mean),
                "mean_score_low": _r(low),
                "mean_score_high": _r(high),
                "too_few": len(values) < MIN_CALLS,
            }
        )
    return out


def item_figures(grid: Grid, done: Sequence[EvalRow]) -> list[ItemFigures]:
    """Per scored item: how often it applied, its mean value (share of the points), how
    often it scored 0."""
    out: list[ItemFigures] = []
    for section, item in grid.items():
        if not item.scored:
            continue
        applied = [e.values[item.id] for e in done if e.values.get(item.id) is not None]
        values = [v for v in applied if v is not None]
        out.append(
            {
                "id": item.id,
                "section": section.id,
                "label": item.label,
                "kind": item.kind,
                "critical": item.critical,
                "weight": item.weight,
                "n": len(values),
                "na": sum(1 for e in done if item.id in e.values and e.values[item.id] is None),
                "mean_value": _r(sum(values) / len(values)) if values else None,
                "zero": sum(1 for v in values if v == 0),
                "too_few": len(values) < MIN_CALLS,
            }
        )
    return out


def campaign_results(
    grid: Grid,
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    *,
    services: Mapping[str, str],
    evaluators: Mapping[str, str],
    now: datetime,
    tz: ZoneInfo,
) -> Results:
    """Everything the results page, the API and the exports show (``previous`` apart)."""
    done = [evals[c.id] for c in calls if c.id in evals]
    return {
        "min_calls": MIN_CALLS,
        "overall": figures(calls, evals, now, grid.scale),
        "services": service_figures(grid, calls, evals, services, now),
        "sections": section_figures(grid, done),
        "items": item_figures(grid, done),
        "strata": strata_figures(calls, evals, now, grid.scale, tz),
        "evaluators": evaluator_figures(calls, evals, evaluators, now),
        "definitions": DEFINITIONS_FR,
    }


def service_figures(
    grid: Grid,
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    names: Mapping[str, str],
    now: datetime,
) -> list[ServiceFigures]:
    """Per service, in the order of the calls: its figures and its sections' mean scores."""
    out: list[ServiceFigures] = []
    for slug in dict.fromkeys(c.service for c in calls):
        mine = [c for c in calls if c.service == slug]
        mine_done = [evals[c.id] for c in mine if c.id in evals]
        out.append(
            {
                "service": slug,
                "name": names.get(slug, slug),
                **figures(mine, evals, now, grid.scale),
                "sections": {s["id"]: s["mean_score"] for s in section_figures(grid, mine_done)},
            }
        )
    return out


def evaluator_figures(
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    names: Mapping[str, str],
    now: datetime,
) -> list[EvaluatorFigures]:
    """Per evaluator, in the order of the calls: how many calls were planned, done, missed
    and to come."""
    out: list[EvaluatorFigures] = []
    for email in dict.fromkeys(c.evaluator for c in calls):
        mine = [c for c in calls if c.evaluator == email]
        states = Counter(state_of(c, c.id in evals, now) for c in mine)
        out.append(
            {
                "email": email,
                "name": names.get(email, email),
                "planned": len(mine),
                "done": states["done"],
                "missed": states["missed"],
                "to_come": states["planned"],
            }
        )
    return out


def strata_figures(
    calls: Sequence[CallRow],
    evals: Mapping[int, EvalRow],
    now: datetime,
    scale: float,
    tz: ZoneInfo,
) -> Strata:
    """The figures per half-day, moment of the day and weekday (local, in ``tz``)."""
    return {
        "half_day": _by(calls, evals, now, lambda c: c.half_day, list(HALF_DAYS_FR.items()), scale),
        "moment": _by(calls, evals, now, lambda c: c.moment, list(MOMENTS_FR.items()), scale),
        "weekday": _by(
            calls,
            evals,
            now,
            lambda c: c.scheduled_at.astimezone(tz).isoweekday(),
            [(i + 1, d) for i, d in enumerate(WEEKDAYS_FR)],
            scale,
        ),
    }


def comparison(current: Results, previous: Results) -> Comparison:
    """The change from the previous campaign's results to these (overall and per service)."""

    def delta(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a - b, 4)

    prev_services = {s["service"]: s for s in previous["services"]}
    return {
        "overall": {
            "mean_score": previous["overall"]["mean_score"],
            "pass_rate": previous["overall"]["pass_rate"],
            "done": previous["overall"]["done"],
            "delta_mean_score": delta(
                current["overall"]["mean_score"], previous["overall"]["mean_score"]
            ),
            "delta_pass_rate": delta(
                current["overall"]["pass_rate"], previous["overall"]["pass_rate"]
            ),
        },
        "services": {
            s["service"]: {
                "mean_score": prev_services[s["service"]]["mean_score"],
                "pass_rate": prev_services[s["service"]]["pass_rate"],
                "delta_mean_score": delta(
                    s["mean_score"], prev_services[s["service"]]["mean_score"]
                ),
                "delta_pass_rate": delta(s["pass_rate"], prev_services[s["service"]]["pass_rate"]),
            }
            for s in current["services"]
            if s["service"] in prev_services
        },
    }
