"""The ``decroche`` command's exit statuses and messages (run as a real process)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import TEST_CONFIG
from tests.support.processes import decroche_env, run_decroche


def test_check_config_prints_what_it_understood(tmp_path: Path) -> None:
    res = run_decroche("check-config", str(TEST_CONFIG), env=decroche_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert f"{TEST_CONFIG}: OK" in res.stdout
    assert "etat-civil « État civil »: lines +33100000002, +33100000003" in res.stdout
    assert "thu 10:00-19:00" in res.stdout
    assert "answer_within_s=20" in res.stdout  # the service's override
    assert "Armistice" in res.stdout


def test_check_config_default_is_the_shipped_example(tmp_path: Path) -> None:
    res = run_decroche("check-config", env=decroche_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "config/decroche.toml: OK" in res.stdout
    assert "weekly digest: mon 07:30 local, for the ISO week before; to " in res.stdout
    assert "service heads: etat-civil → chef.etat-civil@" in res.stdout


def test_config_error_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "town.toml"
    bad.write_text(TEST_CONFIG.read_text().replace('"10:00-19:00"', '"10:00-19:60"'))
    for args in (
        ["check-config", str(bad)],
        ["serve", "--config", str(bad)],
        ["migrate", "--config", str(bad)],
    ):
        res = run_decroche(*args, env=decroche_env(tmp_path))
        assert res.returncode == 1
        assert res.stderr.strip() == (
            f"decroche: {bad}: services[0].hours.thu[0]: '10:00-19:60' is not an interval "
            "like '08:30-12:00' (start before end, 24-hour clock)"
        )


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert run_decroche("serve", "--port", "eighty", env=decroche_env(tmp_path)).returncode == 2
    assert run_decroche("frobnicate", env=decroche_env(tmp_path)).returncode == 2


def test_simulate_needs_a_token(tmp_path: Path) -> None:
    res = run_decroche(
        "simulate", "--url", "http://127.0.0.1:9/webhooks/twilio", env=decroche_env(tmp_path)
    )
    assert res.returncode == 1
    assert "TWILIO_AUTH_TOKEN" in res.stderr


def test_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    env = decroche_env(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:9/nowhere")
    for args in (
        ["migrate"],
        ["refold"],
        ["report", "engagement8", "--from", "2026-11-16", "--to", "2026-11-16"],
    ):
        res = run_decroche(*args, "--config", str(TEST_CONFIG), env=env)
        assert res.returncode == 1, (args, res.stderr)
        assert "cannot reach the database" in res.stderr
        assert "Traceback" not in res.stderr
