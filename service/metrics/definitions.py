"""The Engagement 8 figures and their definitions (``shared/spec/engagement8.md``).

Counts come from SQL; the ratios and the verdict are computed here, from the counts, by pure
functions — the one place where « taux de décroché » and « niveau de service » are defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from service.metrics.model import FigureName, Figures
from service.municipality.model import Policy

# The figures in the contract's order: the names of ``FigureName`` themselves, written once.
FIGURES: tuple[FigureName, ...] = get_args(FigureName)

# One line each, in French, shown next to the figures (pages, exports, digest).
DEFINITIONS_FR: dict[FigureName, str] = {
    "received": "Appels reçus : appels entrants de la période (date de début, heure locale).",
    "out_of_hours": "Hors horaires : appels reçus en dehors des plages d'ouverture du service, "
    "un jour férié ou un jour de fermeture.",
    "short_abandoned": "Abandons courts : appels en horaires non décrochés, raccrochés avant "
    "le seuil d'abandon court (attente strictement inférieure).",
    "offered": "Appels présentés : appels en horaires, moins les abandons courts.",
    "answered": "Appels décrochés : appels présentés décrochés par un agent (un serveur vocal "
    "ne compte pas).",
    "answered_within": "Décrochés dans le délai : appels décrochés après une attente inférieure "
    "ou égale au délai cible.",
    "lost": "Appels perdus : appels présentés non décrochés.",
    "answer_rate": "Taux de décroché : appels décrochés ÷ appels présentés.",
    "service_level": "Niveau de service : appels décrochés dans le délai ÷ appels présentés.",
    "asa_s": "Attente moyenne : moyenne des attentes (s) des appels décrochés.",
    "wait_p90_s": "Attente P90 : 90e centile des attentes (s) des appels décrochés "
    "(interpolation linéaire).",
    "max_wait_s": "Attente maximale : plus longue attente (s) parmi les appels présentés, "
    "décrochés ou non.",
    "met": "Engagement tenu : taux de décroché et niveau de service au moins égaux à leurs cibles.",
}


@dataclass(frozen=True)
class Counts:
    """What SQL counts for one group of calls."""

    received: int = 0
    out_of_hours: int = 0
    short_abandoned: int = 0
    answered: int = 0
    answered_within: int = 0
    asa_s: float | None = None
    wait_p90_s: float | None = None
    max_wait_s: float | None = None


def figures(c: Counts, policy: Policy) -> Figures:
    """Every figure of the contract from the counts of one group, under ``policy``."""
    offered = c.received - c.out_of_hours - c.short_abandoned
    answer_rate = c.answered / offered if offered else None
    service_level = c.answered_within / offered if offered else None
    met = None
    if answer_rate is not None and service_level is not None:
        met = (
            answer_rate >= policy.target_answer_rate
            and service_level >= policy.target_service_level
        )
    return {
        "received": c.received,
        "out_of_hours": c.out_of_hours,
        "short_abandoned": c.short_abandoned,
        "offered": offered,
        "answered": c.answered,
        "answered_within": c.answered_within,
        "lost": offered - c.answered,
        "answer_rate": answer_rate,
        "service_level": service_level,
        "asa_s": c.asa_s,
        "wait_p90_s": c.wait_p90_s,
        "max_wait_s": c.max_wait_s,
        "met": met,
    }
