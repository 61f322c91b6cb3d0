"""The score of one evaluated call (pure): answers checked against the grid, then scored.

**Score** = ``scale`` × Σ(weight × item value) / Σ(weight) over the scored items that apply;
N/A items leave both sums, so they never change the other items' relative weight. Section
scores use the same formula within the section. A call is *passed* when its score reaches
``pass_mark`` and no critical item failed; a critical item fails when its value is 0. With
``critical_fail = "zero"`` such a call's score is 0; with ``"flag"`` it keeps its score but
fails. Section scores are never zeroed: they say where the call was good or bad.

Item values, each in 0..1: ``yes_no`` yes = 1, no = 0; ``scale`` the answer / max;
``measured`` 1 when the seconds measured are at most ``threshold_s``, else 0; ``choice`` the
chosen option's value; ``text`` is a comment, never scored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from campaigns.grids.model import NA, Grid, Item

Answer = bool | int | float | str
# Accepted spellings; stored answers always use True/False and "na".
NA_SPELLINGS = frozenset({NA, "n/a", "n.a.", "sans objet"})
YES_NO = {"yes": True, "oui": True, "true": True, "no": False, "non": False, "false": False}


class AnswerError(ValueError):
    """An answer that does not fit its item; ``field`` is the item id."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class ScoreJson(TypedDict):
    score: float
    raw_score: float
    passed: bool
    excellent: bool
    critical_failed: list[str]
    sections: dict[str, float | None]
    values: dict[str, float | None]


@dataclass(frozen=True)
class Score:
    """What one evaluation gives."""

    score: float  # out of the grid's scale, after a critical failure's zeroing
    raw_score: float  # before it
    passed: bool
    excellent: bool
    critical_failed: tuple[str, ...]  # ids of the critical items that failed
    sections: dict[str, float | None]  # None: every item of the section N/A
    values: dict[str, float | None]  # item id → value in 0..1, None for N/A

    def as_dict(self) -> ScoreJson:
        return {
            "score": self.score,
            "raw_score": self.raw_score,
            "passed": self.passed,
            "excellent": self.excellent,
            "critical_failed": list(self.critical_failed),
            "sections": self.sections,
            "values": self.values,
        }


def item_value(item: Item, answer: Answer) -> float | None:
    """The value in 0..1 of a (checked) answer; None when not applicable."""
    if answer == NA:
        return None
    if item.kind == "yes_no":
        return 1.0 if answer is True else 0.0
    if item.kind == "scale":
        assert item.max is not None
        return float(answer) / item.max
    if item.kind == "measured":
        assert item.threshold_s is not None
        return 1.0 if float(answer) <= item.threshold_s else 0.0
    if item.kind == "choice":
        option = item.option(str(answer))
        assert option is not None
        return option.value
    raise ValueError(f"item {item.id!r} of kind {item.kind!r} is not scored")


def check_answers(grid: Grid, answers: Mapping[str, Any]) -> dict[str, Answer]:
    """The answers, checked: every scored item answered (or N/A where allowed), each value
    of the right kind and range, no unknown item. Raises :class:`AnswerError`."""
    known = {it.id for _, it in grid.items()}
    for key in answers:
        if key not in known:
            raise AnswerError(key, f"{key!r} is not an item of the grid {grid.label}")
    out: dict[str, Answer] = {}
    for _, item in grid.items():
        if item.id not in answers or answers[item.id] is None:
            if item.scored:
                raise AnswerError(item.id, f"« {item.label} » is not answered")
            continue
        out[item.id] = _check(item, answers[item.id])
    if all(item_value(it, out[it.id]) is None for _, it in grid.items() if it.scored):
        raise AnswerError("answers", "every scored item is N/A: there is nothing to score")
    return out


def _check(item: Item, value: Any) -> Answer:
    """One answer checked against its item: a text, N/A where allowed, or its kind's value."""
    if item.kind == "text":
        return _check_text(item, value)
    if isinstance(value, str) and value.strip().lower() in NA_SPELLINGS:
        if not item.na_allowed:
            raise AnswerError(item.id, f"« {item.label} » cannot be N/A in this grid")
        return NA
    return _CHECKERS[item.kind](item, value)


def _check_text(item: Item, value: Any) -> str:
    if not isinstance(value, str):
        raise AnswerError(item.id, f"« {item.label} » takes a text")
    if len(value) > 4000:
        raise AnswerError(item.id, f"« {item.label} » is too long (4,000 characters at most)")
    return value.strip()


def _check_yes_no(item: Item, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in YES_NO:
        return YES_NO[value.strip().lower()]
    if isinstance(value, int) and value in (0, 1):
        return value == 1
    raise AnswerError(item.id, f"« {item.label} » takes true or false (yes / no)")


def _check_choice(item: Item, value: Any) -> str:
    if not isinstance(value, str) or item.option(value) is None:
        known = ", ".join(o.id for o in item.options)
        raise AnswerError(item.id, f"« {item.label} » takes one of: {known}")
    return value


def _number(item: Item, value: Any) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AnswerError(item.id, f"« {item.label} » takes a number")
    return value


def _check_scale(item: Item, value: Any) -> int:
    value = _number(item, value)
    assert item.max is not None
    if value != int(value) or not 0 <= value <= item.max:
        raise AnswerError(item.id, f"« {item.label} » takes a whole number from 0 to {item.max}")
    return int(value)


def _check_measured(item: Item, value: Any) -> float:
    value = _number(item, value)
    if not 0 <= value <= 86_400:  # seconds
        raise AnswerError(item.id, f"« {item.label} » takes seconds, from 0")
    return float(value)


# A checker per scored kind (``text`` is checked before N/A: a text is never N/A).
_CHECKERS: dict[str, Callable[[Item, Any], Answer]] = {
    "yes_no": _check_yes_no,
    "choice": _check_choice,
    "scale": _check_scale,
    "measured": _check_measured,
}


def _weighted(grid: Grid, pairs: list[tuple[Item, float | None]]) -> float | None:
    applied = [(it.weight, v) for it, v in pairs if v is not None]
    total = sum(w for w, _ in applied)
    if total <= 0:
        return None
    return grid.scale * sum(w * v for w, v in applied) / total


def score(grid: Grid, answers: Mapping[str, Answer]) -> Score:
    """Score checked answers (see :func:`check_answers`)."""
    values: dict[str, float | None] = {}
    sections: dict[str, float | None] = {}
    every: list[tuple[Item, float | None]] = []
    for section in grid.sections:
        pairs = [(it, item_value(it, answers[it.id])) for it in section.items if it.scored]
        values.update({it.id: v for it, v in pairs})
        sections[section.id] = _weighted(grid, pairs)
        every.extend(pairs)
    raw = _weighted(grid, every)
    if raw is None:
        raise AnswerError("answers", "every scored item is N/A: there is nothing to score")
    failed = tuple(it.id for it, v in every if it.critical and v == 0)
    final = 0.0 if failed and grid.critical_fail == "zero" else raw
    # Scores are compared with the marks after rounding away float noise (6.999999… is 7).
    rounded = round(final, 9)
    return Score(
        score=rounded,
        raw_score=round(raw, 9),
        passed=not failed and rounded >= grid.pass_mark,
        excellent=not failed and rounded >= grid.excellence_mark,
        critical_failed=failed,
        sections={k: None if v is None else round(v, 9) for k, v in sections.items()},
        values=values,
    )
