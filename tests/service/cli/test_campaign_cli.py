"""``decroche campaign plan|create|list|results`` as real processes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import asyncpg
import openpyxl

from service.settings import REPO_CONFIG
from tests.conftest import TEST_CONFIG, Database
from tests.support.paths import DATA
from tests.support.processes import decroche_env, run_decroche

CAMPAIGN = DATA / "campaign.toml"
KEYS = {"scheduled_at", "service", "number", "scenario", "evaluator", "mode", "half_day", "moment"}


def plan(tmp_path: Path, *args: str, file: Path = CAMPAIGN) -> tuple[int, str, str]:
    res = run_decroche(
        "campaign", "plan", str(file), "--config", str(TEST_CONFIG), *args,
        env=decroche_env(tmp_path),
    )  # fmt: skip
    return res.returncode, res.stdout, res.stderr


def test_plan_prints_every_call_the_same_way_twice(tmp_path: Path) -> None:
    code, out, err = plan(tmp_path, "--format", "json")
    assert code == 0, err
    calls = json.loads(out)
    assert len(calls) == 13
    assert all(set(c) == KEYS for c in calls)
    assert {c["service"] for c in calls} == {"accueil", "etat-civil"}
    assert {c["number"] for c in calls if c["service"] == "etat-civil"} == {"+33100000003"}
    assert all(c["scheduled_at"].endswith("+01:00") for c in calls)  # November: CET
    assert plan(tmp_path, "--format", "json")[1] == out
    code, table, _ = plan(tmp_path)
    assert code == 0
    assert table.splitlines()[0].split() == [
        "Date", "Heure", "Service", "Numéro", "Scénario", "Évaluateur", "Moment"
    ]  # fmt: skip
    assert "accueil (+33100000001) : 8 appels" in table
    code, text, _ = plan(tmp_path, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["scheduled_at"] for r in rows] == [c["scheduled_at"] for c in calls]
    code, ics, _ = plan(tmp_path, "--format", "ics", "--evaluator", "paul.durand@ville.test")
    assert code == 0
    pauls = [c for c in calls if c["evaluator"] == "paul.durand@ville.test"]
    assert ics.count("BEGIN:VEVENT") == len(pauls) > 0
    assert plan(tmp_path, "--format", "ics", "--evaluator", "paul.durand@ville.test")[1] == ics
    # (the process is read as text: its CRLF line ends arrive as \n)
    assert all(len(line.encode()) <= 75 for line in ics.splitlines())
    assert "SUMMARY:Appel mystère — État civil" in ics or "SUMMARY:Appel mystère — Accueil" in ics


def test_the_shipped_example_plans_for_the_shipped_town(tmp_path: Path) -> None:
    example = REPO_CONFIG.parent / "campaigns" / "exemple.toml"
    res = run_decroche(
        "campaign", "plan", str(example), "--config", str(REPO_CONFIG), "--format", "json",
        env=decroche_env(tmp_path),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    calls = json.loads(res.stdout)
    assert len(calls) == 48
    paul = [c for c in calls if c["evaluator"].startswith("paul.durand")]
    assert not [c for c in paul if c["scheduled_at"][:10] in {"2027-05-10", "2027-05-11"}]


def test_plan_faults_are_one_clear_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(CAMPAIGN.read_text().replace("calls = 8", 'calls = "huit"'))
    code, _, err = plan(tmp_path, file=bad)
    assert code == 1
    assert err.strip() == f"decroche: {bad}: targets[0].calls: expected a whole number, got str"
    huge = tmp_path / "huge.toml"
    huge.write_text(CAMPAIGN.read_text().replace("calls = 8", "calls = 400"))
    code, _, err = plan(tmp_path, file=huge)
    assert code == 1
    assert err.startswith(
        f"decroche: {huge}: the campaign cannot be planned:\n  accueil: 400 calls"
    )
    code, _, err = plan(tmp_path, "--evaluator", "nobody@ville.test")
    assert code == 1
    assert "no call for evaluator nobody@ville.test" in err


async def test_create_list_and_results(
    tmp_path: Path, database: Database, db: asyncpg.Connection
) -> None:
    env = decroche_env(tmp_path, DATABASE_URL=database.dsn)
    common = ("--config", str(TEST_CONFIG))
    res = run_decroche("campaign", "create", str(CAMPAIGN), *common, env=env)
    assert res.returncode == 0, res.stderr
    assert "calls planned with grid accueil-telephonique v1" in res.stdout
    cid = await db.fetchval("SELECT id FROM campaigns")
    assert f"created campaign {cid} « Appels mystères — novembre 2026 »: 13 calls" in res.stdout
    assert await db.fetchval("SELECT count(*) FROM mystery_calls WHERE campaign_id = $1", cid) == 13
    audit = await db.fetchrow("SELECT actor, detail::text AS detail FROM audit_log")
    assert audit["actor"] == "cli"
    assert json.loads(audit["detail"])["grid"] == "accueil-telephonique"
    listed = run_decroche("campaign", "list", *common, env=env)
    assert f"{cid:>4}  Appels mystères — novembre 2026" in listed.stdout
    assert "0/13 done, 13 missed" in listed.stdout
    res = run_decroche("campaign", "results", str(cid), "--format", "json", *common, env=env)
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert results["overall"]["planned"] == 13
    assert results["grid"]["slug"] == "accueil-telephonique"
    table = run_decroche("campaign", "results", str(cid), *common, env=env).stdout
    assert "Ensemble" in table
    assert "trop peu pour conclure" in table
    out = tmp_path / "r.xlsx"
    res = run_decroche(
        "campaign", "results", str(cid), "--format", "xlsx", "--output", str(out), *common, env=env
    )
    assert res.returncode == 0, res.stderr
    assert openpyxl.load_workbook(out)["Services"].max_row == 4  # header, two services, total
    res = run_decroche("campaign", "results", str(cid), "--format", "xlsx", *common, env=env)
    assert res.returncode == 1
    res = run_decroche("campaign", "results", "999999", *common, env=env)
    assert res.returncode == 1
    assert "no campaign 999999" in res.stderr
