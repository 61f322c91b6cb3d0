"""The e-mails an evaluator receives (pure): the call sheet before a slot, and the morning
summary of the day's calls. French, plain text with an HTML alternative."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import formataddr

from service.municipality.french import clock, long_date

MODES = {
    "manual": "à passer vous-même",
    "assisted": "assisté : Décroché vous appelle, puis vous met en relation",
    "probe": "automatique, hors des heures d'ouverture",
}


@dataclass(frozen=True)
class SheetCall:
    """One mystery call as the evaluator must know it (times in the municipality's zone)."""

    id: int
    scheduled_at: datetime
    campaign: str
    service_name: str
    number: str
    mode: str
    question: str | None
    expected: str | None
    evaluator_name: str
    evaluator_email: str
    link: str  # the scoring page, absolute


def _lines(call: SheetCall) -> list[tuple[str, str]]:
    rows = [
        ("Quand", f"{long_date(call.scheduled_at.date())} à {clock(call.scheduled_at)}"),
        ("Service", call.service_name),
        ("Numéro à appeler", call.number),
        ("Mode", MODES.get(call.mode, call.mode)),
        ("Scénario", call.question or "libre (une question que le service traite)"),
    ]
    if call.expected:
        rows.append(("Réponse attendue", call.expected))
    rows.append(("Grille à remplir", call.link))
    return rows


def call_sheet(call: SheetCall) -> EmailMessage:
    """The sheet sent before a slot."""
    msg = EmailMessage()
    msg["To"] = formataddr((call.evaluator_name, call.evaluator_email))
    msg["Subject"] = (
        f"Appel mystère à {clock(call.scheduled_at)} — {call.service_name} ({call.campaign})"
    )
    rows = _lines(call)
    text = [
        f"Bonjour {call.evaluator_name},",
        "",
        f"Voici la fiche de votre prochain appel mystère de la campagne « {call.campaign} ».",
        "",
        *(f"{k} : {v}" for k, v in rows),
        "",
        "Présentez-vous comme un usager ordinaire ; ne révélez pas la réponse attendue.",
        "Remplissez la grille juste après l'appel, tant que vos souvenirs sont précis.",
        "",
        "— Décroché",
    ]
    msg.set_content("\n".join(text))
    msg.add_alternative(_html(call.evaluator_name, [rows], intro=text[2]), subtype="html")
    msg["X-Decroche-Mystery-Call"] = str(call.id)
    return msg


def day_summary(day: date, calls: Sequence[SheetCall]) -> EmailMessage:
    """The morning summary of one evaluator's calls of ``day`` (at least one)."""
    first = calls[0]
    msg = EmailMessage()
    msg["To"] = formataddr((first.evaluator_name, first.evaluator_email))
    n = len(calls)
    msg["Subject"] = f"Vos appels mystères du {long_date(day)} : {n} appel{'s' if n > 1 else ''}"
    text = [f"Bonjour {first.evaluator_name},", "", f"Vos appels mystères du {long_date(day)} :"]
    for c in calls:
        scenario = f" — scénario : {c.question}" if c.question else ""
        mode = f" ({MODES[c.mode]})" if c.mode != "manual" else ""
        text.append(f"- {clock(c.scheduled_at)} : {c.service_name}, {c.number}{mode}{scenario}")
        text.append(f"  grille : {c.link}")
    text.append("")
    if any(c.mode == "manual" for c in calls):
        text.append("Chaque fiche vous sera aussi envoyée peu avant l'appel à passer.")
    if any(c.mode == "assisted" for c in calls):
        text.append("Pour un appel assisté, Décroché vous appelle à l'heure dite : décrochez.")
    text += ["", "— Décroché"]
    msg.set_content("\n".join(text))
    msg.add_alternative(
        _html(first.evaluator_name, [_lines(c) for c in calls], text[2]), subtype="html"
    )
    return msg


def _html(name: str, blocks: Sequence[Sequence[tuple[str, str]]], intro: str) -> str:
    e = html.escape
    parts = [f"<p>Bonjour {e(name)},</p>", f"<p>{e(intro)}</p>"]
    for rows in blocks:
        cells = "".join(
            f"<tr><th align='left' style='padding:2px 12px 2px 0'>{e(k)}</th>"
            f"<td>{_link(v) if k == 'Grille à remplir' else e(v)}</td></tr>"
            for k, v in rows
        )
        parts.append(f"<table style='margin-bottom:16px'>{cells}</table>")
    parts.append("<p>— Décroché</p>")
    return "<!doctype html><html lang='fr'><body>" + "".join(parts) + "</body></html>"


def _link(url: str) -> str:
    u = html.escape(url, quote=True)
    return f"<a href='{u}'>{u}</a>"
