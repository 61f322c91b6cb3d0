"""Grids: the shipped ones, every refusal with its key, and the score formula (properties)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.grids.library import SHIPPED, GridLibrary
from campaigns.grids.model import NA, Grid, Item, load_grid, parse_grid
from campaigns.score.scoring import AnswerError, check_answers, item_value, score
from service.municipality.tables import ConfigError


def test_the_shipped_grids_follow_a_phone_reception() -> None:
    lib = GridLibrary.load([SHIPPED])
    reception = lib.latest("accueil-telephonique")
    closed = lib.latest("message-fermeture")
    assert reception is not None
    assert closed is not None
    assert [s.title for s in reception.sections] == [
        "Décroché",
        "Prise de contact",
        "Écoute",
        "Réponse",
        "Prise de congé",
    ]
    assert (reception.scale, reception.pass_mark, reception.excellence_mark) == (10, 7, 9)
    delai = reception.item("delai")
    assert delai is not None
    assert (delai.kind, delai.threshold_s) == ("measured", 25)
    info = reception.item("information")
    assert info is not None
    assert info.critical
    kinds = {it.kind for _, it in reception.items()}
    assert kinds == {"measured", "yes_no", "scale", "choice", "text"}
    labels = " ".join(it.label for _, it in closed.items())
    assert "horaires" in labels
    assert "autre moyen" in labels


def minimal(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "slug": "essai",
        "version": 1,
        "name": "Essai",
        "scale": 10,
        "pass_mark": 7,
        "excellence_mark": 9,
        "sections": [
            {
                "id": "a",
                "title": "A",
                "items": [
                    {"id": "oui", "label": "Oui ?", "kind": "yes_no", "weight": 2},
                    {"id": "note", "label": "Note", "kind": "scale", "max": 4, "weight": 3},
                ],
            }
        ],
    }
    base.update(changes)
    return base


@pytest.mark.parametrize(
    ("mutate", "key", "problem"),
    [
        (
            lambda g: g["sections"][0]["items"][0].update(kind="oui_non"),
            "sections[0].items[0].kind",
            "unknown kind 'oui_non'",
        ),
        (
            lambda g: g["sections"][0]["items"][1].update(id="oui"),
            "sections[0].items[1].id",
            "duplicate id 'oui'",
        ),
        (lambda g: g["sections"][0].update(id="oui"), "sections[0].items[0].id", "duplicate id"),
        (
            lambda g: [it.update(weight=0) for it in g["sections"][0]["items"]],
            "sections",
            "sum to zero",
        ),
        (
            lambda g: g["sections"][0]["items"][1].pop("max"),
            "sections[0].items[1].max",
            "is required",
        ),
        (lambda g: g.update(critical_fail="zéro"), "critical_fail", "is not one of zero, flag"),
        (lambda g: g.update(pass_mark=11), "pass_mark", "not between 0 and the scale"),
        (lambda g: g.update(colour="bleu"), "colour", "unknown key"),
        (
            lambda g: g["sections"][0]["items"][0].update(weight=-1),
            "sections[0].items[0].weight",
            "negative",
        ),
        (
            lambda g: g["sections"][0]["items"].append(
                {"id": "c", "label": "C", "kind": "choice", "options": {"seul": 1}}
            ),
            "sections[0].items[2].options",
            "at least two options",
        ),
        (
            lambda g: g["sections"][0]["items"].append(
                {"id": "c", "label": "C", "kind": "choice", "options": {"a": 1, "b": 1.5}}
            ),
            "sections[0].items[2].options[1].value",
            "not between 0 and 1",
        ),
        (
            lambda g: g["sections"][0]["items"].append(
                {"id": "t", "label": "T", "kind": "text", "critical": True}
            ),
            "sections[0].items[2].critical",
            "not scored",
        ),
        (
            lambda g: g["sections"][0]["items"].append(
                {"id": "m", "label": "M", "kind": "measured"}
            ),
            "sections[0].items[2].threshold_s",
            "is required",
        ),
        (lambda g: g.update(sections=[]), "sections", "at least one"),
        (lambda g: g.update(version=0), "version", "from 1"),
    ],
)
def test_a_faulty_grid_is_refused_naming_file_and_key(mutate: Any, key: str, problem: str) -> None:
    g = minimal()
    mutate(g)
    with pytest.raises(ConfigError) as info:
        parse_grid(g, "grilles/essai.toml")
    assert info.value.path == "grilles/essai.toml"
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(info.value).startswith(f"grilles/essai.toml: {key}: ")


def test_a_grid_file_reads_back_from_its_json_and_same_content_same_digest(tmp_path: Path) -> None:
    shipped = load_grid(SHIPPED / "accueil-telephonique.toml")
    again = parse_grid(shipped.as_dict(), "stored")
    assert again == shipped
    assert again.digest == shipped.digest
    changed = copy.deepcopy(shipped.as_dict())
    changed["sections"][0]["items"][0]["label"] = "Décroché en quatre sonneries"
    assert parse_grid(changed, "x").digest != shipped.digest


def test_a_library_refuses_two_files_with_one_version_and_lets_a_user_grid_shadow(
    tmp_path: Path,
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    text = (SHIPPED / "accueil-telephonique.toml").read_text()
    (mine / "a.toml").write_text(
        text.replace('name = "Accueil téléphonique"', 'name = "Ma grille"')
    )
    lib = GridLibrary.load([mine, SHIPPED])
    grid = lib.latest("accueil-telephonique")
    assert grid is not None
    assert grid.name == "Ma grille"
    (mine / "b.toml").write_text(text)
    with pytest.raises(ConfigError, match=r"also defined in a\.toml"):
        GridLibrary.load([mine])
    (mine / "b.toml").write_text(text.replace("version = 1", "version = 2"))
    latest = GridLibrary.load([mine]).latest("accueil-telephonique")
    assert latest is not None
    assert latest.version == 2


GRID = load_grid(SHIPPED / "accueil-telephonique.toml")


def answers_for(grid: Grid) -> st.SearchStrategy[dict[str, Any]]:
    """Any valid set of answers of a grid."""

    def one(item: Item) -> st.SearchStrategy[Any]:
        base: st.SearchStrategy[Any]
        if item.kind == "yes_no":
            base = st.booleans()
        elif item.kind == "scale":
            assert item.max is not None
            base = st.integers(0, item.max)
        elif item.kind == "measured":
            base = st.floats(0, 300, allow_nan=False)
        elif item.kind == "choice":
            base = st.sampled_from([o.id for o in item.options])
        else:
            return st.text(max_size=20)
        return st.one_of(base, st.just(NA)) if item.na_allowed else base

    return st.fixed_dictionaries({it.id: one(it) for _, it in grid.items()})


@st.composite
def grids(draw: Any) -> Grid:
    """Random valid grids: any kinds, weights, N/A, critical items and both failure modes."""
    scale = draw(st.sampled_from([5, 10, 20, 100]))
    pass_mark = draw(st.floats(0, scale))
    sections: list[dict[str, Any]] = []
    n = 0
    for s in range(draw(st.integers(1, 3))):
        items = []
        for _ in range(draw(st.integers(1, 4))):
            n += 1
            kind = draw(st.sampled_from(["yes_no", "scale", "measured", "choice", "text"]))
            item: dict[str, Any] = {"id": f"i{n}", "label": f"Critère {n}", "kind": kind}
            if kind != "text":
                item["weight"] = draw(st.sampled_from([0, 0.5, 1, 2, 6]))
                item["na_allowed"] = draw(st.booleans())
                item["critical"] = draw(st.booleans())
            if kind == "scale":
                item["max"] = draw(st.integers(1, 5))
            if kind == "measured":
                item["threshold_s"] = draw(st.sampled_from([10, 25, 60]))
            if kind == "choice":
                item["options"] = [
                    {"id": f"o{k}", "label": f"Option {k}", "value": v}
                    for k, v in enumerate(draw(st.lists(st.floats(0, 1), min_size=2, max_size=4)))
                ]
            items.append(item)
        sections.append({"id": f"s{s}", "title": f"Section {s}", "items": items})
    sections[0]["items"].append({"id": "socle", "label": "Socle", "kind": "yes_no", "weight": 1})
    return parse_grid(
        {
            "slug": "aleatoire",
            "version": 1,
            "name": "Aléatoire",
            "scale": scale,
            "pass_mark": pass_mark,
            "excellence_mark": draw(st.floats(pass_mark, scale)),
            "critical_fail": draw(st.sampled_from(["zero", "flag"])),
            "sections": sections,
        },
        "generated",
    )


@st.composite
def graded(draw: Any) -> tuple[Grid, dict[str, Any]]:
    grid = draw(grids())
    answers = draw(answers_for(grid))
    answers["socle"] = draw(st.booleans())  # one scored item always applies
    return grid, answers


@settings(max_examples=300, deadline=None)
@given(graded())
def test_scores_stay_within_the_scale(case: tuple[Grid, dict[str, Any]]) -> None:
    grid, answers = case
    result = score(grid, check_answers(grid, answers))
    assert 0 <= result.score <= grid.scale
    assert 0 <= result.raw_score <= grid.scale
    for v in result.sections.values():
        assert v is None or 0 <= v <= grid.scale
    assert result.passed or not result.excellent


RESOLUTION = 1e-9


@settings(max_examples=300, deadline=None)
@given(graded())
def test_na_never_changes_the_others_relative_weight(case: tuple[Grid, dict[str, Any]]) -> None:
    """Scoring with some items N/A equals scoring the grid without those items."""
    grid, answers = case
    checked = check_answers(grid, answers)
    na = {k for k, v in checked.items() if v == NA}
    reduced = grid.as_dict()
    for s in reduced["sections"]:
        s["items"] = [it for it in s["items"] if it["id"] not in na]
    reduced["sections"] = [s for s in reduced["sections"] if s["items"]]
    if sum(it.get("weight", 0) for s in reduced["sections"] for it in s["items"]) == 0:
        return  # nothing left to weigh: refused elsewhere
    smaller = parse_grid(reduced, "reduced")
    kept = {k: v for k, v in checked.items() if k not in na}
    # (scores are kept to 9 decimals: RESOLUTION is their last digit)
    assert score(grid, checked).raw_score == pytest.approx(
        score(smaller, kept).raw_score, abs=RESOLUTION
    )
    # and by hand: Σ weight × value / Σ weight over the applicable items, times the scale
    applicable = [(it, item_value(it, checked[it.id])) for _, it in grid.items() if it.scored]
    num = sum(it.weight * v for it, v in applicable if v is not None)
    den = sum(it.weight for it, v in applicable if v is not None)
    assert score(grid, checked).raw_score == pytest.approx(grid.scale * num / den, abs=RESOLUTION)


@settings(max_examples=300, deadline=None)
@given(graded())
def test_a_critical_failure_always_fails(case: tuple[Grid, dict[str, Any]]) -> None:
    grid, answers = case
    result = score(grid, check_answers(grid, answers))
    failed = [
        it.id
        for _, it in grid.items()
        if it.critical and item_value(it, check_answers(grid, answers)[it.id]) == 0
    ]
    assert list(result.critical_failed) == failed
    if failed:
        assert not result.passed
        assert not result.excellent
        if grid.critical_fail == "zero":
            assert result.score == 0
        else:
            assert result.score == result.raw_score
    else:
        assert result.passed == (result.score >= grid.pass_mark)


def perfect() -> dict[str, Any]:
    return {
        "delai": 12,
        "attente-annoncee": "na",
        "bonjour": True,
        "service-nomme": True,
        "agent-nomme": True,
        "amabilite": 3,
        "laisse-parler": True,
        "reformulation": True,
        "information": 4,
        "transfert": "na",
        "mise-en-attente": "na",
        "besoin-satisfait": True,
        "remerciements": True,
    }


def test_the_default_grid_scores_a_call_by_hand() -> None:
    assert score(GRID, check_answers(GRID, perfect())).score == 10
    a = perfect() | {"delai": 31, "agent-nomme": False, "information": 3}
    # applicable weights: 4+2+2+1+2+2+2+6+1+1 = 23; lost: delai 4, agent 1, information 6/4
    result = score(GRID, check_answers(GRID, a))
    assert result.score == pytest.approx(10 * (23 - 4 - 1 - 1.5) / 23)
    assert result.passed  # 7.17 ≥ 7
    assert not result.excellent
    assert result.sections["decroche"] == 0  # delai failed, attente N/A
    wrong = perfect() | {"information": 0}
    result = score(GRID, check_answers(GRID, wrong))
    assert result.critical_failed == ("information",)
    assert (result.score, result.passed) == (0, False)
    assert result.raw_score == pytest.approx(10 * 17 / 23)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"bonjour": None}, "bonjour", "is not answered"),
        ({"bonjour": "na"}, "bonjour", "cannot be N/A"),
        ({"amabilite": 4}, "amabilite", "from 0 to 3"),
        ({"amabilite": 1.5}, "amabilite", "whole number"),
        ({"transfert": "perdu"}, "transfert", "one of: annonce-abouti"),
        ({"delai": -3}, "delai", "seconds"),
        ({"delai": True}, "delai", "number"),
        ({"inconnu": 1}, "inconnu", "not an item"),
        ({"observations": 12}, "observations", "takes a text"),
    ],
)
def test_bad_answers_say_which_item(change: dict[str, Any], field: str, message: str) -> None:
    answers = {k: v for k, v in (perfect() | change).items() if v is not None}
    with pytest.raises(AnswerError) as info:
        check_answers(GRID, answers)
    assert info.value.field == field
    assert message in info.value.message


def test_every_item_na_is_refused() -> None:
    grid = parse_grid(
        minimal(
            sections=[
                {
                    "id": "a",
                    "title": "A",
                    "items": [{"id": "x", "label": "X", "kind": "yes_no", "na_allowed": True}],
                }
            ]
        ),
        "g",
    )
    with pytest.raises(AnswerError, match="nothing to score"):
        check_answers(grid, {"x": "na"})


def test_answers_in_other_spellings_are_stored_one_way() -> None:
    spelled = perfect() | {
        "bonjour": "oui",
        "agent-nomme": 0,
        "transfert": "N/A",
        "service-nomme": "yes",
    }
    checked = check_answers(GRID, spelled)
    assert (checked["bonjour"], checked["agent-nomme"], checked["transfert"]) == (True, False, NA)
    assert checked["service-nomme"] is True
    canonical = check_answers(GRID, perfect() | {"agent-nomme": False})
    assert score(GRID, checked) == score(GRID, canonical)
    with pytest.raises(AnswerError, match="takes true or false"):
        check_answers(GRID, perfect() | {"bonjour": 2})
