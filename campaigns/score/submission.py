"""An evaluation as a requester sends it (pure): the body's shape checked, then its answers
checked against the grid and scored.

Errors name the field as the API does: ``answers``, ``comments``, ``comment``, ``reason``,
or ``answers.<item id>`` for one answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from campaigns.grids.model import Grid
from campaigns.score.scoring import Answer, AnswerError, Score, check_answers, score

MAX_COMMENT = 2000  # an item's comment
MAX_TEXT = 4000  # the call's comment, a correction's reason


class SubmissionError(ValueError):
    """A submission that cannot be saved; ``field`` as the API names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Submission:
    """A body of the right shape (its answers not yet checked against a grid)."""

    answers: Mapping[str, Any]
    comments: Mapping[str, str]
    comment: str
    reason: str


@dataclass(frozen=True)
class Scored:
    """A submission checked against its grid and scored: what an evaluation stores."""

    answers: dict[str, Answer]
    comments: dict[str, str]  # trimmed; empty ones left out
    comment: str  # trimmed
    result: Score


def read_submission(body: Mapping[str, Any]) -> Submission:
    """The body's answers, comments, comment and reason, each of the right type and size."""
    answers = body.get("answers")
    if not isinstance(answers, dict):
        raise SubmissionError("answers", "answers must be an object: item id → answer")
    comments = body.get("comments", {})
    if not isinstance(comments, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_COMMENT
        for k, v in comments.items()
    ):
        raise SubmissionError("comments", "comments must map item ids to texts")
    comment = body.get("comment", "")
    reason = body.get("reason", "")
    for name, value in (("comment", comment), ("reason", reason)):
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise SubmissionError(name, f"{name} must be a text (4,000 characters at most)")
    return Submission(answers, comments, comment, reason)


def score_submission(grid: Grid, sub: Submission) -> Scored:
    """The submission checked against ``grid`` (comments on its items only) and scored."""
    unknown = sorted(set(sub.comments) - {it.id for _, it in grid.items()})
    if unknown:
        raise SubmissionError("comments", f"{unknown[0]!r} is not an item of the grid")
    try:
        checked = check_answers(grid, sub.answers)
        result = score(grid, checked)
    except AnswerError as exc:
        raise SubmissionError(f"answers.{exc.field}", exc.message) from None
    return Scored(
        answers=checked,
        comments={k: v.strip() for k, v in sub.comments.items() if v.strip()},
        comment=sub.comment.strip(),
        result=result,
    )
