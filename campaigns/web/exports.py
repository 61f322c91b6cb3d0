"""A campaign's results and calls as CSV (the API's field names, for tools) and as an XLSX
workbook (French, for people: synthesis, services, sections, items, strata, calls,
definitions). Names and labels are people's text: no cell becomes a formula
(``service.web.cells``)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import pandas as pd

from campaigns.payloads import CallJson, CampaignResults
from campaigns.plan.formats import PLAN_FIELDS
from campaigns.score.model import Figures
from service.web.cells import csv_cell, strings_stay_strings

FigureColumn = Literal[
    "planned",
    "done",
    "missed",
    "to_come",
    "cancelled",
    "mean_score",
    "mean_score_low",
    "mean_score_high",
    "pass_rate",
    "pass_rate_low",
    "pass_rate_high",
    "excellent_share",
    "too_few",
]
FIGURE_COLUMNS: tuple[FigureColumn, ...] = get_args(FigureColumn)  # in this order
FIGURES_FR = {
    "planned": "Prévus",
    "done": "Réalisés",
    "missed": "Manqués",
    "to_come": "À venir",
    "cancelled": "Annulés",
    "mean_score": "Note moyenne",
    "mean_score_low": "Note : borne basse (IC 95 %)",
    "mean_score_high": "Note : borne haute (IC 95 %)",
    "pass_rate": "Taux de réussite",
    "pass_rate_low": "Réussite : borne basse (IC 95 %)",
    "pass_rate_high": "Réussite : borne haute (IC 95 %)",
    "excellent_share": "Part d'excellence",
    "too_few": "Trop peu d'appels",
}
ITEMS_FR = {
    "section": "Section",
    "id": "Code",
    "label": "Critère",
    "kind": "Type",
    "critical": "Éliminatoire",
    "weight": "Poids",
    "n": "Appels notés",
    "na": "Sans objet",
    "mean_value": "Réussite moyenne",
    "zero": "Échecs",
    "too_few": FIGURES_FR["too_few"],
}
TABLES = ("services", "sections", "items", "strata", "calls")
STRATA: tuple[Literal["half_day", "moment", "weekday"], ...] = ("half_day", "moment", "weekday")
CALL_COLUMNS = ("id", *PLAN_FIELDS, "state", "score", "passed", "excellent")


def services_frame(results: CampaignResults) -> pd.DataFrame:
    rows = [
        {"service": s["service"], "name": s["name"], **{k: s[k] for k in FIGURE_COLUMNS}}
        for s in results["services"]
    ]
    rows.append(
        {
            "service": "total",
            "name": "Ensemble",
            **{k: results["overall"][k] for k in FIGURE_COLUMNS},
        }
    )
    return pd.DataFrame(rows, columns=["service", "name", *FIGURE_COLUMNS])


def sections_frame(results: CampaignResults) -> pd.DataFrame:
    cols = ["id", "title", "n", "mean_score", "mean_score_low", "mean_score_high", "too_few"]
    return pd.DataFrame(results["sections"], columns=cols)


def items_frame(results: CampaignResults) -> pd.DataFrame:
    cols = [
        "section",
        "id",
        "label",
        "kind",
        "critical",
        "weight",
        "n",
        "na",
        "mean_value",
        "zero",
        "too_few",
    ]
    return pd.DataFrame(results["items"], columns=cols)


def strata_frame(results: CampaignResults) -> pd.DataFrame:
    rows = [
        {"stratum": name, "key": r["key"], "label": r["label"], **{k: r[k] for k in FIGURE_COLUMNS}}
        for name in STRATA
        for r in results["strata"][name]
    ]
    return pd.DataFrame(rows, columns=["stratum", "key", "label", *FIGURE_COLUMNS])


def calls_frame(calls: Sequence[CallJson]) -> pd.DataFrame:
    rows = [_call_row(c) for c in calls]
    return pd.DataFrame(rows, columns=list(CALL_COLUMNS))


def _call_row(c: CallJson) -> dict[str, object]:
    """A call's columns (``CALL_COLUMNS``), its evaluation's in short."""
    evaluation = c["evaluation"]
    return {
        **{k: c.get(k) for k in CALL_COLUMNS if k not in ("score", "passed", "excellent")},
        "score": evaluation["score"] if evaluation else None,
        "passed": evaluation["passed"] if evaluation else None,
        "excellent": evaluation["excellent"] if evaluation else None,
    }


def to_csv(results: CampaignResults, table: str, calls: Sequence[CallJson]) -> str:
    frame = {
        "services": lambda: services_frame(results),
        "sections": lambda: sections_frame(results),
        "items": lambda: items_frame(results),
        "strata": lambda: strata_frame(results),
        "calls": lambda: calls_frame(calls),
    }[table]()
    frame.insert(0, "campaign", results["campaign"]["id"])
    return frame_csv(frame)


def calls_csv(calls: Sequence[CallJson]) -> str:
    """The plan's calls as CSV (the API's ``?format=csv``)."""
    return frame_csv(calls_frame(calls))


def frame_csv(frame: pd.DataFrame) -> str:
    """A frame as CSV whose text cells no spreadsheet evaluates; numbers stay numbers."""
    return str(frame.map(csv_cell).to_csv(index=False))


def to_xlsx(results: CampaignResults, calls: Sequence[CallJson]) -> bytes:
    """The workbook, French headers, one sheet a table."""
    sheets = {
        "Synthèse": synthesis_frame(results),
        "Services": services_frame(results).rename(
            columns={"service": "Service (code)", "name": "Service", **FIGURES_FR}
        ),
        "Sections": sections_frame(results).rename(
            columns={"id": "Code", "title": "Section", "n": "Appels", **FIGURES_FR}
        ),
        "Critères": items_frame(results).rename(columns=ITEMS_FR),
        "Strates": strata_frame(results).rename(
            columns={"stratum": "Strate", "key": "Code", "label": "Libellé", **FIGURES_FR}
        ),
        "Appels": calls_frame(calls),
        "Définitions": pd.DataFrame(
            list(results["definitions"].items()), columns=["Terme", "Définition"]
        ),
    }
    return _workbook(sheets)


def synthesis_frame(results: CampaignResults) -> pd.DataFrame:
    """The campaign, its grid and its overall figures (French labels), then the comparison
    with the previous campaign when there is one."""
    camp, grid = results["campaign"], results["grid"]
    rows = [
        ("Campagne", camp["name"]),
        ("Période", f"du {camp['starts_on']} au {camp['ends_on']}"),
        ("Grille", f"{grid['name']} ({grid['slug']}, version {grid['version']})"),
        (
            "Échelle",
            f"sur {grid['scale']:g} ; réussite à {grid['pass_mark']:g}, "
            f"excellence à {grid['excellence_mark']:g}",
        ),
        *((FIGURES_FR[k], results["overall"][k]) for k in FIGURE_COLUMNS),
    ]
    synthesis = pd.DataFrame(rows, columns=["", "Valeur"])
    prev = results["previous"]
    if not prev:
        return synthesis
    previous = [
        ("Campagne précédente", prev["name"]),
        ("Note moyenne précédente", prev["overall"]["mean_score"]),
        ("Évolution de la note", prev["overall"]["delta_mean_score"]),
        ("Taux de réussite précédent", prev["overall"]["pass_rate"]),
        ("Évolution du taux de réussite", prev["overall"]["delta_pass_rate"]),
    ]
    return pd.concat([synthesis, pd.DataFrame(previous, columns=["", "Valeur"])])


def _workbook(sheets: Mapping[str, pd.DataFrame]) -> bytes:
    """An XLSX file of the frames, one sheet each, columns as wide as their content (up to
    60 characters, judged on the first 200 rows)."""
    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            strings_stay_strings(sheet.iter_rows())
            for i, col in enumerate(frame.columns, start=1):
                width = max([len(str(col)), *(len(str(v)) for v in frame[col].head(200))])
                sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(60, width + 2)
    return out.getvalue()


def to_table(results: CampaignResults) -> str:
    """The results for the terminal (French, like the pages)."""
    g, o = results["grid"], results["overall"]

    def num(v: float | None, pct: bool = False) -> str:
        if v is None:
            return "—"
        return f"{100 * v:.0f} %" if pct else f"{v:.1f}".replace(".", ",")

    def ci(lo: float | None, hi: float | None, pct: bool = False) -> str:
        return "" if lo is None else f"[{num(lo, pct)} – {num(hi, pct)}]"

    head = ("Service", "Prévus", "Réalisés", "Manqués", "Note", "IC 95 %", "Réussite", "IC 95 %")
    rows = [head]
    named: list[tuple[str, Figures]] = [(s["name"], s) for s in results["services"]]
    for name, s in [*named, ("Ensemble", o)]:
        rows.append(
            (
                name + (" *" if s["too_few"] else ""),
                str(s["planned"]),
                str(s["done"]),
                str(s["missed"]),
                num(s["mean_score"]),
                ci(s["mean_score_low"], s["mean_score_high"]),
                num(s["pass_rate"], True),
                ci(s["pass_rate_low"], s["pass_rate_high"], True),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        f"« {results['campaign']['name']} » — grille {g['name']} v{g['version']}, "
        f"note sur {g['scale']:g}, réussite à {g['pass_mark']:g}",
        "",
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(3, "  ".join("─" * w for w in widths))
    lines.append("")
    lines.append(f"* moins de {results['min_calls']} appels réalisés : trop peu pour conclure")
    for sec in results["sections"]:
        lines.append(f"  {sec['title']} : {num(sec['mean_score'])} ({sec['n']} appels)")
    return "\n".join(lines)
