"""The digest's plain-text alternative (for clients that show no HTML, and for screen
readers): the same sentences as the HTML, in the same order."""

from __future__ import annotations

from collections.abc import Sequence

from service.digest import formatting as fmt
from service.digest import story
from service.digest.model import Digest, ServiceWeek


def _service_lines(s: ServiceWeek) -> list[str]:
    f = s.figures
    lines = [
        f"{s.name} — {story.verdict(s)}",
        f"  Taux de décroché {fmt.pct(f['answer_rate'])} ({fmt.points(s.delta('answer_rate'))}"
        f" sur une semaine), niveau de service {fmt.pct(f['service_level'])} "
        f"({fmt.points(s.delta('service_level'))})",
        f"  {fmt.many(f['offered'], 'présenté', 'présentés')}, "
        f"{fmt.many(f['lost'], 'perdu', 'perdus')}, "
        f"{fmt.count(f['out_of_hours'])} hors horaires ; rappels en attente : "
        f"{story.callbacks(s)}",
        f"  Quatre semaines : {story.trend_text(s)}",
    ]
    lines += [f"  - {w}" for w in story.half_hours(s)]
    return lines


def digest_text(d: Digest, focus: Sequence[str], *, link: str | None = None) -> str:
    services = story.ordered(d, focus)
    mine = [s for s in services if s.slug in focus]
    out = [
        f"Décroché · {d.municipality}",
        f"Synthèse de la {fmt.week_label(d.week)}, {fmt.week_span(d.week)}",
        "",
        story.headline(d),
        story.total_line(d),
    ]
    sore = story.sore_points(d)
    if sore:
        out += ["", "Là où ça coince :", *(f"- {line}" for line in sore)]
    if (mystery := story.mystery_summary(d)) is not None:
        out += ["", mystery]
    if mine:
        out += ["", "VOTRE SERVICE", ""]
        for s in mine:
            out += [*_service_lines(s), ""]
    out += ["", "LES SERVICES CETTE SEMAINE", ""]
    for s in services:
        if s not in mine:
            out += [*_service_lines(s), ""]
    out += _service_lines(d.total)
    if d.mystery:
        out += ["", "APPELS MYSTÈRES DE LA SEMAINE", ""]
        for c in d.mystery:
            out += [f"{c.name} (grille « {c.grid_name} ») : {story.mystery_line(c)}"]
            if c.weakest:
                out.append(f"  Points les plus faibles : {story.weakest(c)}.")
            if c.discrepancies:
                out.append(f"  {story.discrepancies(c)}.")
            out += [
                f"  - {s.name} : {fmt.many(s.done, 'évalué', 'évalués')}, "
                f"{fmt.score(s.mean_score, c.scale)}, "
                f"{fmt.pct(s.pass_rate)} réussis"
                for s in c.services
            ]
            out.append("")
    out += [
        "",
        "--",
        story.definitions(d) + " Rappels en attente : au moment de l'envoi.",
    ]
    if link:
        out.append(f"Tableau de bord : {link}")
    return "\n".join(out) + "\n"
