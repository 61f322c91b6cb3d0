"""``decroche report engagement8``: the API's figures, as JSON, CSV, XLSX and a table."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.keys import DB_POOL
from service.metrics.definitions import FIGURES
from tests.conftest import TEST_CONFIG, Database
from tests.service.metrics.test_engagement8 import edge_calls, ingest
from tests.support.processes import decroche_env, run_decroche

Client = TestClient[web.Request, web.Application]
PERIOD = ("--from", "2026-11-01", "--to", "2026-11-30")


def report(database: Database, tmp_path: Path, *args: str) -> Any:
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="k")
    return run_decroche(
        "report", "engagement8", "--config", str(TEST_CONFIG), *PERIOD, *args, env=env
    )


async def api(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/v1/engagement8?from=2026-11-01&to=2026-11-30")
    data: dict[str, Any] = await resp.json()
    return data


async def test_json_csv_and_xlsx_carry_the_api_figures(
    client: Client, database: Database, tmp_path: Path
) -> None:
    await ingest(client, edge_calls())
    expected = await api(client)
    assert expected["total"]["received"] > 10

    res = report(database, tmp_path, "--format", "json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == expected

    res = report(database, tmp_path, "--format", "csv")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    by_service = {r["service"]: r for r in rows}
    assert [r["service"] for r in rows] == ["accueil", "etat-civil", "astreinte", "", "total"]
    for api_row, key in [
        *((r, r["service"] or "") for r in expected["services"]),
        (expected["total"], "total"),
    ]:
        row = by_service[key]
        assert (row["from"], row["to"]) == ("2026-11-01", "2026-11-30")
        for k in ("received", "offered", "answered", "lost", "short_abandoned"):
            assert int(row[k]) == api_row[k]
        if api_row["answer_rate"] is not None:
            assert float(row["answer_rate"]) == api_row["answer_rate"]

    out = tmp_path / "e8.xlsx"
    res = report(database, tmp_path, "--format", "xlsx", "--output", str(out))
    assert res.returncode == 0, res.stderr
    sheet = pd.read_excel(out, sheet_name="Engagement 8")
    assert list(sheet["Service"]) == [r["name"] for r in expected["services"]] + ["Total"]
    assert list(sheet["Reçus"]) == [r["received"] for r in expected["services"]] + [
        expected["total"]["received"]
    ]
    notes = pd.read_excel(out, sheet_name="Définitions")
    assert "Taux de décroché" in set(notes["Élément"])


async def test_table_is_readable_in_french(
    client: Client, database: Database, tmp_path: Path
) -> None:
    await ingest(client, edge_calls())
    res = report(database, tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "Engagement 8 — du 2026-11-01 au 2026-11-30 (Europe/Paris)" in out
    assert "Taux de décroché" in out
    assert "Ligne inconnue" in out
    assert "etat-civil: answer_within_s=20" in out
    assert "✔ tenu" in out or "✘ non tenu" in out
    assert " %" in out  # percentages, French style


def test_user_errors_exit_1(tmp_path: Path, database: Database) -> None:
    res = report(database, tmp_path, "--service", "piscine")
    assert res.returncode == 1
    assert "unknown service 'piscine'" in res.stderr
    res = report(database, tmp_path, "--format", "xlsx")
    assert res.returncode == 1
    assert "--output" in res.stderr
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn)
    bad = run_decroche(
        "report", "engagement8", "--from", "16/11/2026", "--to", "2026-11-30", env=env
    )
    assert bad.returncode == 2
    assert "not a date like 2026-11-16" in bad.stderr


def test_figures_are_the_contract_names() -> None:
    assert FIGURES == (
        "received",
        "out_of_hours",
        "short_abandoned",
        "offered",
        "answered",
        "answered_within",
        "lost",
        "answer_rate",
        "service_level",
        "asa_s",
        "wait_p90_s",
        "max_wait_s",
        "met",
    )


async def test_rollup_command_builds_what_reports_then_read(
    client: Client, database: Database, tmp_path: Path
) -> None:
    await ingest(client, edge_calls())
    expected = await api(client)
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn, DECROCHE_SECRET_KEY="k")
    res = run_decroche("rollup", "--config", str(TEST_CONFIG), env=env)
    assert res.returncode == 0, res.stderr
    pool = client.app[DB_POOL]
    days = await pool.fetchval("SELECT count(*) FROM rollup_days")
    assert days >= 273  # 29 March .. 26 December 2026
    assert f"rollup up to date ({days} days rebuilt)" in res.stdout
    # Up to date: nothing to do; --rebuild starts over.
    again = run_decroche("rollup", "--config", str(TEST_CONFIG), env=env)
    assert "(0 days rebuilt)" in again.stdout
    rebuilt = run_decroche("rollup", "--rebuild", "--config", str(TEST_CONFIG), env=env)
    # A rebuild covers the first call's day to the last one's (the first build also took
    # the neighbours of the days the calls' inserts had marked).
    assert "(273 days rebuilt)" in rebuilt.stdout
    assert await pool.fetchval("SELECT count(*) FROM rollup_days") == 273
    assert await api(client) == expected
    res = report(database, tmp_path, "--format", "json")
    assert json.loads(res.stdout) == expected
