"""The Engagement 8 report as a terminal table, CSV and XLSX (pandas does the frames).

CSV keeps the API's field names and plain numbers (for tools); the table and the XLSX speak
French (for people), with percentages, seconds and a check mark for a kept commitment.
Service names are text people type: no cell of either file becomes a formula
(``service.web.cells``).
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from service.metrics.definitions import DEFINITIONS_FR, FIGURES
from service.metrics.model import Engagement8Report
from service.web.cells import csv_cell, strings_stay_strings

LABELS_FR = {
    "name": "Service",
    "received": "Reçus",
    "out_of_hours": "Hors horaires",
    "short_abandoned": "Abandons courts",
    "offered": "Présentés",
    "answered": "Décrochés",
    "answered_within": "Dans le délai",
    "lost": "Perdus",
    "answer_rate": "Taux de décroché",
    "service_level": "Niveau de service",
    "asa_s": "Attente moy. (s)",
    "wait_p90_s": "Attente P90 (s)",
    "max_wait_s": "Attente max (s)",
    "met": "Engagement",
}


def report_frame(report: Engagement8Report) -> pd.DataFrame:
    """One row per service (and the unknown line), then the total; the API's field names."""
    rows = [
        {"service": r["service"] or "", "name": r["name"], **{k: r[k] for k in FIGURES}}
        for r in report["services"]
    ]
    rows.append({"service": "total", "name": "Total", **{k: report["total"][k] for k in FIGURES}})
    return pd.DataFrame(rows, columns=["service", "name", *FIGURES])


def to_csv(report: Engagement8Report) -> str:
    frame = report_frame(report)
    frame.insert(0, "to", report["period"]["to"])
    frame.insert(0, "from", report["period"]["from"])
    return str(frame.map(csv_cell).to_csv(index=False))


def _pct(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{100 * v:.1f} %".replace(".", ",")


def _sec(v: float | None) -> str:
    return "—" if v is None or pd.isna(v) else f"{v:.0f}"


def _met(v: bool | None) -> str:
    return "—" if v is None or pd.isna(v) else ("✔ tenu" if v else "✘ non tenu")


def french_frame(report: Engagement8Report) -> pd.DataFrame:
    """The report as people read it: French headers, formatted values."""
    frame = report_frame(report).drop(columns=["service"])
    for col in ("answer_rate", "service_level"):
        frame[col] = frame[col].map(_pct)
    for col in ("asa_s", "wait_p90_s", "max_wait_s"):
        frame[col] = frame[col].map(_sec)
    frame["met"] = frame["met"].map(_met)
    return frame.rename(columns=LABELS_FR)


def render_table(report: Engagement8Report) -> str:
    """A fixed-width table for the terminal, with the period and the policy used."""
    p, pol = report["period"], report["policy"]
    frame = french_frame(report)
    head = (
        f"Engagement 8 — du {p['from']} au {p['to']} ({p['timezone']})\n"
        f"Cibles : taux de décroché ≥ {_pct(pol['target_answer_rate'])}, niveau de "
        f"service ≥ {_pct(pol['target_service_level'])} (décroché en "
        f"{pol['answer_within_s']:g} s au plus) ; abandon court < "
        f"{pol['short_abandon_s']:g} s"
    )
    overrides = "; ".join(
        f"{slug}: " + ", ".join(f"{k}={v:g}" for k, v in o.items())
        for slug, o in pol["overrides"].items()
    )
    if overrides:
        head += f"\nValeurs propres à certains services : {overrides}"
    body = frame.to_string(index=False)
    rule = "─" * min(len(body.splitlines()[0]), 160)
    return f"{head}\n{rule}\n{body}\n{rule}"


def write_xlsx(report: Engagement8Report, path: Path | io.BytesIO) -> None:
    """A workbook: the figures (French headers, raw numbers), then the definitions."""
    frame = report_frame(report).drop(columns=["service"]).rename(columns=LABELS_FR)
    p, pol = report["period"], report["policy"]
    notes = pd.DataFrame(
        [
            ("Période", f"du {p['from']} au {p['to']} ({p['timezone']})"),
            ("Délai cible (s)", pol["answer_within_s"]),
            ("Seuil d'abandon court (s)", pol["short_abandon_s"]),
            ("Cible taux de décroché", pol["target_answer_rate"]),
            ("Cible niveau de service", pol["target_service_level"]),
            *[
                (f"Valeurs propres : {slug}", ", ".join(f"{k}={v:g}" for k, v in o.items()))
                for slug, o in pol["overrides"].items()
            ],
            *[(LABELS_FR[k], text) for k, text in DEFINITIONS_FR.items()],
        ],
        columns=["Élément", "Valeur"],
    )
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        frame.to_excel(writer, sheet_name="Engagement 8", index=False)
        notes.to_excel(writer, sheet_name="Définitions", index=False)
        for written in writer.sheets.values():
            strings_stay_strings(written.iter_rows())
        sheet = writer.sheets["Engagement 8"]
        for col in ("I", "J"):  # the two ratios
            for cell in sheet[col][1:]:
                cell.number_format = "0.0%"
        sheet.column_dimensions["A"].width = 26
