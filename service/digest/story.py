"""What the digest says, in French sentences, shared by its HTML and its plain text (pure):
the headline, the order of the services for a recipient, the sore points, the mystery
calls and the one line of definitions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from service.digest import formatting as fmt
from service.digest.model import Digest, MysteryWeek, ServiceWeek


def ordered(d: Digest, focus: Sequence[str]) -> list[ServiceWeek]:
    """The services for a recipient: theirs first (``focus``, in configuration order), then
    the others, then the unknown line."""
    mine = [s for s in d.services if s.slug in focus]
    return mine + [s for s in d.services if s not in mine]


def verdict(s: ServiceWeek) -> str:
    if s.met is None:
        return "aucun appel présenté"
    return "engagement tenu" if s.met else "engagement non tenu"


def headline(d: Digest) -> str:
    """« Engagement tenu par 2 services sur 3 » (the services that had offered calls)."""
    judged = d.judged()
    if not judged:
        return "Aucun appel présenté cette semaine"
    kept = sum(1 for s in judged if s.met)
    noun = "service" if kept < 2 else "services"  # « 0 service », « 1 service », « 2 services »
    return f"Engagement tenu par {kept} {noun} sur {len(judged)}"


def total_line(d: Digest) -> str:
    f, t = d.total.figures, d.total.targets or (None, None)
    if not f["offered"]:
        received = fmt.many(f["received"], "appel reçu", "appels reçus")
        return f"{received}, aucun pendant les horaires d'ouverture."
    return (
        f"Ensemble : taux de décroché {fmt.pct(f['answer_rate'])} (cible {fmt.pct(t[0])}, "
        f"{fmt.points(d.total.delta('answer_rate'))} sur une semaine), niveau de service "
        f"{fmt.pct(f['service_level'])} (cible {fmt.pct(t[1])}), "
        f"{fmt.many(f['lost'], 'appel perdu', 'appels perdus')} sur "
        f"{fmt.many(f['offered'], 'présenté', 'présentés')}."
    )


def sore_points(d: Digest) -> list[str]:
    """Where it hurts: the services not keeping the commitment, the worst first."""
    missed = [s for s in d.judged() if s.met is False]
    missed.sort(key=lambda s: (s.figures["answer_rate"], s.figures["service_level"]))
    return [
        f"{s.name} : {fmt.pct(s.figures['answer_rate'])} décrochés, "
        f"{fmt.pct(s.figures['service_level'])} dans le délai, "
        f"{fmt.many(s.figures['lost'], 'appel perdu', 'appels perdus')}"
        for s in missed
    ]


def trend_text(s: ServiceWeek) -> str:
    """« 81 % → 84 % → 79 % → 86 % » (answer rate, oldest week first)."""
    return " → ".join(fmt.pct(p.answer_rate).replace(",0", "") for p in s.trend)


def half_hours(s: ServiceWeek) -> list[str]:
    """« lun. 19 oct., 17 h 00 – 17 h 30 : 2 appels perdus sur 3 (33,3 % décrochés) »."""
    out = []
    for h in s.worst:
        lost = fmt.many(h.lost, "appel perdu", "appels perdus")
        rate = "aucun décroché" if not h.answered else f"{fmt.pct(h.answer_rate)} décrochés"
        out.append(
            f"{fmt.short_day(h.day)}, {fmt.half_hour(h.slot)} : {lost} "
            f"sur {fmt.count(h.offered)} ({rate})"
        )
    return out


def callbacks(s: ServiceWeek) -> str:
    if not s.callbacks_open:
        return "aucun"
    late = f", dont {fmt.count(s.callbacks_overdue)} en retard" if s.callbacks_overdue else ""
    return f"{fmt.count(s.callbacks_open)}{late}"


def mystery_line(c: MysteryWeek) -> str:
    parts = [
        fmt.many(c.planned, "appel prévu", "appels prévus") + " cette semaine",
        fmt.many(c.done, "évalué", "évalués"),
    ]
    if c.missed:
        parts.append(fmt.many(c.missed, "manqué", "manqués"))
    line = ", ".join(parts)
    if c.done:
        line += (
            f" ; note moyenne {fmt.score(c.mean_score, c.scale)}, "
            f"{fmt.pct(c.pass_rate)} d'appels réussis"
        )
        if c.too_few:
            line += " (peu d'appels : à lire avec prudence)"
    return line + "."


def discrepancies(c: MysteryWeek) -> str:
    """« 2 appels mystères mal vus par la téléphonie »."""
    return fmt.many(
        c.discrepancies,
        "appel mystère mal vu par la téléphonie",
        "appels mystères mal vus par la téléphonie",
    )


def mystery_summary(d: Digest) -> str | None:
    """One line for the top of the digest: what the week's mystery calls found."""
    found = []
    for c in d.mystery:
        if not c.done:
            found.append(
                f"{c.name} : aucun appel évalué ({fmt.many(c.planned, 'prévu', 'prévus')})"
            )
            continue
        found.append(
            f"{c.name} : {fmt.many(c.done, 'appel évalué', 'appels évalués')}, note moyenne "
            f"{fmt.score(c.mean_score, c.scale)}, {fmt.pct(c.pass_rate)} réussis"
            + (f", {discrepancies(c)}" if c.discrepancies else "")
        )
    return ("Appels mystères — " + " ; ".join(found) + ".") if found else None


def weakest(c: MysteryWeek) -> str:
    return " ; ".join(f"{label} ({fmt.pct(share)})" for label, share in c.weakest)


def subject(d: Digest, focus: Sequence[str]) -> str:
    span = fmt.week_span(d.week)
    mine = [s for s in d.services if s.slug in focus]
    if len(mine) == 1:
        return f"Décroché — {mine[0].name}, {fmt.week_label(d.week)} ({span}) : {verdict(mine[0])}"
    return f"Décroché — {fmt.week_label(d.week)} ({span}) : {headline(d).lower()}"


def definitions(d: Digest) -> str:
    """The definitions and the policy used, in one line."""
    p = d.policy
    text = (
        "Définitions : un appel est présenté s'il arrive pendant les horaires d'ouverture "
        f"et n'est pas raccroché en moins de {fmt.count(round(p['short_abandon_s']))} s ; "
        "taux de décroché = appels décrochés par un agent (un serveur vocal ne compte pas) "
        "÷ appels présentés ; niveau de service = appels décrochés en "
        f"{fmt.count(round(p['answer_within_s']))} s au plus ÷ appels présentés ; engagement "
        f"tenu si le taux atteint {fmt.pct(p['target_answer_rate'])} et le niveau "
        f"{fmt.pct(p['target_service_level'])}."
    )
    names = {s.slug: s.name for s in d.services}
    overrides = [
        f"{names.get(slug, slug)} : " + ", ".join(_override(k, v) for k, v in sorted(diff.items()))
        for slug, diff in p.get("overrides", {}).items()
    ]
    if overrides:
        text += " Règles propres : " + " ; ".join(overrides) + "."
    return text + f" Semaine ISO {d.week}, fuseau horaire {d.timezone}."


def _override(key: str, value: float) -> str:
    labels: dict[str, tuple[str, Callable[[float], str]]] = {
        "answer_within_s": ("délai", lambda v: f"{fmt.count(round(v))} s"),
        "short_abandon_s": ("abandon court", lambda v: f"{fmt.count(round(v))} s"),
        "target_answer_rate": ("cible de décroché", fmt.pct),
        "target_service_level": ("cible de niveau de service", fmt.pct),
    }
    label, show = labels[key]
    return f"{label} {show(value)}"
