"""The JSON forms of stored campaigns, planned calls and evaluations (API, CLI, exports)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from campaigns.grids.model import Grid, GridJson
from campaigns.run.voice import OUTCOMES
from campaigns.score.model import Comparison, Results, TelephonyCheck
from campaigns.score.results import state
from campaigns.score.scoring import Answer
from campaigns.spec import ScenarioJson

# -- the shapes (dicts at run time; times are ISO 8601 in the municipality's zone) -----------


class SheetJson(TypedDict):
    """The call sheet's claim: ``outcome`` as the run recorded it, ``at`` when."""

    outcome: str | None
    at: str | None


class CallScore(TypedDict):
    """A planned call's evaluation, in short."""

    id: int
    score: float
    passed: bool
    excellent: bool | None


class _CallFields(TypedDict):
    """A planned call's fields but its scenario and evaluation (whose forms differ between
    the list of calls and one call's page)."""

    id: int
    campaign: int
    scheduled_at: str
    service: str
    service_name: str
    number: str
    evaluator: str
    evaluator_name: str
    mode: str
    half_day: str
    moment: str
    state: str
    status_reason: str | None
    moved_from: str | None
    moved_reason: str | None
    sheet: SheetJson | None
    run_outcome: str | None
    run_outcome_label: str | None
    plan_revision: int
    url: str


class CallJson(_CallFields):
    """``call_json``: a planned call as the lists, the CSV and the calendar give it."""

    scenario: str | None  # the scenario's id
    evaluation: CallScore | None


class OwnCallJson(CallJson):
    """One of the requester's own calls (``/api/v1/mystery-calls``)."""

    campaign_name: str


class EvaluationJson(TypedDict):
    """``evaluation_json``: an evaluation as saved (its current revision)."""

    id: int
    mystery_call: int
    answers: dict[str, Answer]  # item id → answer ("na": not applicable)
    comments: dict[str, str]
    comment: str
    score: float
    raw_score: float
    passed: bool
    excellent: bool
    critical_failed: list[str]
    sections: dict[str, float | None]
    revision: int
    author: str
    first_author: str
    created_at: str
    updated_at: str


class RecordingLink(TypedDict):
    url: str
    seconds: int | None


class RunJson(TypedDict):
    """``run_json``: what Twilio did for an assisted call or a probe."""

    kind: str
    state: str
    outcome: str | None
    outcome_label: str | None
    detail: str | None
    placed_at: str | None
    evaluator_answered_at: str | None
    target_ringing_at: str | None
    target_answered_at: str | None
    ended_at: str | None
    ring_seconds: float | None
    prefill: dict[str, int]  # item id → the measured answer
    recording: RecordingLink | None
    recording_erased_at: str | None


class MysteryCallJson(_CallFields):
    """One planned call with all its scoring page needs (``/api/v1/mystery-calls/{id}``)."""

    scenario: ScenarioJson | None  # the campaign structure's scenario, as stored
    campaign_name: str
    campaign_status: str
    grid: GridJson
    evaluation: EvaluationJson | None
    can_evaluate: bool
    can_correct: bool
    can_mark_missed: bool
    run: RunJson | None


class GridSummary(TypedDict):
    slug: str
    version: int
    name: str
    scale: float
    pass_mark: float
    excellence_mark: float
    critical_fail: str


class GridRef(TypedDict):
    slug: str
    version: int
    name: str


class CampaignJson(TypedDict):
    """``campaign_json``: a stored campaign with its counts."""

    id: int
    name: str
    status: str
    starts_on: str
    ends_on: str
    mode: str
    grid: GridRef
    plan_revision: int
    calls: int
    done: int
    missed: int
    next_call_at: str | None
    notes: list[str]
    created_by: str
    created_at: str
    replanned_at: str | None
    cancelled_at: str | None


class CreationDetail(TypedDict):
    calls: int
    grid: str
    grid_version: int


class ScoredCampaign(Results):
    """A campaign's results with the campaign and its grid (``flows``, the previous
    campaign's as much as this one's)."""

    campaign: CampaignJson
    grid: GridSummary


class PreviousCampaign(CampaignJson, Comparison):
    """The previous campaign on the same grid, and the change from it."""

    same_grid_version: bool


class CampaignResults(ScoredCampaign):
    """``flows.results``: what the API, the page, the exports and the command line show."""

    telephony: TelephonyCheck
    previous: PreviousCampaign | None


# -- the forms --------------------------------------------------------------------------------


def call_json(
    row: Mapping[str, Any],
    names: Mapping[str, str],
    evaluators: Mapping[str, str],
    tz: Any,
    now: datetime,
) -> CallJson:
    done = row["evaluation_id"] is not None
    return {
        "id": row["id"],
        "campaign": row["campaign_id"],
        "scheduled_at": row["scheduled_at"].astimezone(tz).isoformat(),
        "service": row["service"],
        "service_name": names.get(row["service"], row["service"]),
        "number": row["number"],
        "scenario": row["scenario"],
        "evaluator": row["evaluator"],
        "evaluator_name": evaluators.get(row["evaluator"], row["evaluator"]),
        "mode": row["mode"],
        "half_day": row["half_day"],
        "moment": row["moment"],
        "state": state(row["status"], row["scheduled_at"], done, now),
        "status_reason": row["status_reason"],
        "moved_from": row["moved_from"].astimezone(tz).isoformat() if row["moved_from"] else None,
        "moved_reason": row["moved_reason"],
        "sheet": _sheet(row["sheet"], tz),
        "run_outcome": row["run_outcome"],
        "run_outcome_label": OUTCOMES.get(row["run_outcome"] or ""),
        "plan_revision": row["plan_revision"],
        "evaluation": (
            {
                "id": row["evaluation_id"],
                "score": row["score"],
                "passed": row["passed"],
                "excellent": row.get("excellent"),
            }
            if done
            else None
        ),
        "url": f"/appels-mysteres/{row['id']}",
    }


def _sheet(claim: Mapping[str, Any] | None, tz: Any) -> SheetJson | None:
    """The call sheet's claim, its time in the municipality's zone (jsonb keeps UTC)."""
    if claim is None:
        return None
    at = claim.get("at")
    local = datetime.fromisoformat(at).astimezone(tz).isoformat() if at else None
    return {"outcome": claim.get("outcome"), "at": local}


def evaluation_json(row: Mapping[str, Any]) -> EvaluationJson | None:
    if row["evaluation_id"] is None:
        return None
    return {
        "id": row["evaluation_id"],
        "mystery_call": row["mystery_call_id"],
        "answers": row["answers"],
        "comments": row["comments"],
        "comment": row["comment"],
        "score": row["score"],
        "raw_score": row["raw_score"],
        "passed": row["passed"],
        "excellent": row["excellent"],
        "critical_failed": list(row["critical_failed"]),
        "sections": row["sections"],
        "revision": row["revision"],
        "author": row["author"],
        "first_author": row["first_author"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def grid_summary(grid: Grid) -> GridSummary:
    return {
        "slug": grid.slug,
        "version": grid.version,
        "name": grid.name,
        "scale": grid.scale,
        "pass_mark": grid.pass_mark,
        "excellence_mark": grid.excellence_mark,
        "critical_fail": grid.critical_fail,
    }


def campaign_json(row: Mapping[str, Any]) -> CampaignJson:
    spec = row["spec"]
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "starts_on": spec["starts_on"],
        "ends_on": spec["ends_on"],
        "mode": spec["mode"],
        "grid": {
            "slug": row["grid_slug"],
            "version": row["grid_version"],
            "name": row["grid_name"],
        },
        "plan_revision": row["plan_revision"],
        "calls": row["calls"],
        "done": row["done"],
        "missed": row["missed"],
        "next_call_at": row["next_call_at"].isoformat() if row["next_call_at"] else None,
        "notes": row["notes"],
        "created_by": row["created_by"],
        "created_at": row["created_at"].isoformat(),
        "replanned_at": row["replanned_at"].isoformat() if row["replanned_at"] else None,
        "cancelled_at": row["cancelled_at"].isoformat() if row["cancelled_at"] else None,
    }


def creation_detail(row: Mapping[str, Any]) -> CreationDetail:
    """What the audit log keeps of a campaign's creation: its calls and the grid version
    (stored, if it came from a file, by this very creation)."""
    return {"calls": row["calls"], "grid": row["grid_slug"], "grid_version": row["grid_version"]}


def run_json(run: Mapping[str, Any] | None, tz: Any) -> RunJson | None:
    """What Twilio did for an assisted call: outcome, ring time, pre-filled answers and the
    recording's link (served through Décroché, never Twilio's own URL)."""
    if run is None:
        return None

    def local(name: str) -> str | None:
        value = run[name]
        return value.astimezone(tz).isoformat() if value is not None else None

    has_recording = run["recording_sid"] is not None and run["recording_erased_at"] is None
    return {
        "kind": run["kind"],
        "state": run["state"],
        "outcome": run["outcome"],
        "outcome_label": OUTCOMES.get(run["outcome"] or ""),
        "detail": run["detail"],
        "placed_at": local("placed_at"),
        "evaluator_answered_at": local("evaluator_answered_at"),
        "target_ringing_at": local("target_ringing_at"),
        "target_answered_at": local("target_answered_at"),
        "ended_at": local("ended_at"),
        "ring_seconds": run["ring_seconds"],
        "prefill": run["prefill"],
        "recording": (
            {
                "url": f"/api/v1/mystery-calls/{run['mystery_call_id']}/recording",
                "seconds": run["recording_seconds"],
            }
            if has_recording
            else None
        ),
        "recording_erased_at": local("recording_erased_at"),
    }
