"""The configuration file: what is accepted, and the exact faults refused with file and key."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from service.municipality.model import ConfigError, load_municipality, parse_municipality
from service.outside.mail import parse_smtp_url
from service.settings import default_config_path, load_settings

BASE = """
timezone = "Europe/Paris"
[[services]]
slug = "accueil"
lines = ["+33100000001"]
[services.hours]
mon = ["08:30-12:00", "13:30-17:30"]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "town.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_example_is_valid_and_rich() -> None:
    m = load_municipality(default_config_path())
    assert len(m.services) >= 4
    hours = [iv for s in m.services for ivs in s.hours.values() for iv in ivs]
    assert any(end >= time(19, 0) for _, end in hours), "a late day"
    assert any(5 in s.hours for s in m.services), "a Saturday morning"
    assert any(len(ivs) == 2 for s in m.services for ivs in s.hours.values()), "split days"
    assert m.closures
    assert any(s.closures for s in m.services)


def test_minimal_file_gets_the_policy_defaults(tmp_path: Path) -> None:
    m = load_municipality(write(tmp_path, BASE))
    svc = m.services[0]
    assert svc.policy.answer_within_s == 25
    assert svc.policy.short_abandon_s == 5
    assert svc.policy.target_answer_rate == 0.85
    assert svc.policy.target_service_level == 0.80
    assert svc.hours[0] == ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    assert m.privacy.keep_numbers_days == 30


def test_service_policy_overrides_only_what_it_names(tmp_path: Path) -> None:
    m = load_municipality(
        write(
            tmp_path,
            BASE.replace(
                'timezone = "Europe/Paris"',
                'timezone = "Europe/Paris"\n[policy]\nshort_abandon_s = 3',
            )
            + "[services.policy]\nanswer_within_s = 20\n",
        )
    )
    assert m.services[0].policy.answer_within_s == 20
    assert m.services[0].policy.short_abandon_s == 3  # inherited from [policy]


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        (BASE + "colour = 'blue'\n", "services[0].hours.colour", "unknown key"),
        ("colour = 'blue'\n" + BASE, "colour", "unknown key"),
        (
            BASE.replace('timezone = "Europe/Paris"', 'timezone = "Europe/Pariss"'),
            "timezone",
            "unknown time zone",
        ),
        (
            BASE.replace('"08:30-12:00"', '"08:30-25:00"'),
            "services[0].hours.mon[0]",
            "not an interval",
        ),
        (
            BASE.replace('"08:30-12:00"', '"12:00-08:30"'),
            "services[0].hours.mon[0]",
            "start before end",
        ),
        (BASE.replace('"13:30-17:30"', '"11:30-17:30"'), "services[0].hours.mon", "overlap"),
        (BASE.replace('slug = "accueil"\n', ""), "services[0].slug", "required"),
        (BASE.replace('slug = "accueil"', 'slug = "État civil"'), "services[0].slug", "[a-z0-9-]+"),
        (
            BASE + '[[services]]\nslug = "autre"\nlines = ["+33100000001"]\n',
            "services[1].lines",
            "claimed by both",
        ),
        (BASE + '[[services]]\nslug = "accueil"\n', "services[1].slug", "already"),
        (
            BASE.replace('lines = ["+33100000001"]', 'lines = ["0387550101"]'),
            "services[0].lines[0]",
            "E.164",
        ),
        ('holiday_zone = "corse"\n' + BASE, "holiday_zone", "not one of"),
        ("closures = ['2026-13-01']\n" + BASE, "closures[0]", "not a date"),
        ("[policy]\ntarget_answer_rate = 85\n" + BASE, "policy.target_answer_rate", "out of range"),
        ("[policy]\nanswer_within_s = true\n" + BASE, "policy.answer_within_s", "boolean"),
        ("[digest]\nsend_at = 'monday 7h'\n" + BASE, "digest.send_at", "not like"),
        (
            "[digest]\nrecipients = ['dgs@ville.fr, maire@ville.fr']\n" + BASE,
            "digest.recipients[0]",
            "one address per string",
        ),
        (
            BASE + "[services.digest]\nrecipients = ['chef']\n",
            "services[0].digest.recipients[0]",
            "is not an e-mail address",
        ),
        ('timezone = "Europe/Paris"\n', "services", "at least one"),
    ],
)
def test_faults_name_the_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_municipality(path)
    assert err.value.key == key
    assert words in err.value.problem
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone = \n")
    with pytest.raises(ConfigError, match="not valid TOML") as err:
        load_municipality(path)
    assert str(path) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_municipality(tmp_path / "nope.toml")


def test_toml_dates_and_strings_are_both_dates() -> None:
    m = parse_municipality(
        {"closures": [date(2026, 12, 24), "2026-12-31"], "services": [{"slug": "a", "lines": []}]},
        "x.toml",
    )
    assert m.closures == {date(2026, 12, 24), date(2026, 12, 31)}


def test_queue_wins_over_line_when_mapping_a_call(tmp_path: Path) -> None:
    m = load_municipality(
        write(
            tmp_path,
            BASE.replace('lines = ["+33100000001"]', 'lines = ["+33100000001"]\nqueues = ["q1"]')
            + '[[services]]\nslug = "autre"\nlines = ["+33100000002"]\n',
        )
    )
    assert m.service_for("+33100000002", "q1").slug == "accueil"  # type: ignore[union-attr]
    assert m.service_for("+33100000002", None).slug == "autre"  # type: ignore[union-attr]
    assert m.service_for("+33999999999", None) is None


def test_environment_is_validated(tmp_path: Path) -> None:
    cfg = write(tmp_path, BASE)
    env = {"DECROCHE_DATA_DIR": str(tmp_path / "data"), "DECROCHE_PUBLIC_URL": "decroche.fr"}
    with pytest.raises(ConfigError, match="DECROCHE_PUBLIC_URL"):
        load_settings(cfg, env)
    env["DECROCHE_PUBLIC_URL"] = "https://decroche.ville.fr/"
    env["DATABASE_URL"] = "mysql://x"
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(cfg, env)
    del env["DATABASE_URL"]
    s = load_settings(cfg, env)
    assert s.public_url == "https://decroche.ville.fr"
    assert s.twilio_auth_token is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DECROCHE_SMTP_URL", "mail.ville.fr:587", "must start with smtp:// or smtps://"),
        ("DECROCHE_SMTP_URL", "smtp://:587", "names no host"),
        ("DECROCHE_SMTP_URL", "smtp://h:25?tls=1", "unknown option 'tls'"),
        ("DECROCHE_SMTP_URL", "smtp://h:25?starttls=maybe", "starttls must be 1 or 0"),
        ("DECROCHE_SMTP_URL", "smtp://h:port", "port that is not a number"),
        ("DECROCHE_MAIL_FROM", "Décroché", "is not an e-mail address"),
        ("DECROCHE_CAMPAIGN_TICK_S", "0", "is not a positive number"),
        ("DECROCHE_TWILIO_CALLER_ID", "0387550101", "is not an E.164 number"),
        ("DECROCHE_TWILIO_CALLS_PER_SECOND", "-1", "is not a positive number"),
        ("DECROCHE_CAMPAIGN_TICK_S", "soon", "is not a positive number"),
    ],
)
def test_running_settings_are_validated(
    tmp_path: Path, name: str, value: str, message: str
) -> None:
    cfg = write(tmp_path, BASE)
    env = {"DECROCHE_DATA_DIR": str(tmp_path / "data"), name: value}
    with pytest.raises(ConfigError, match=name) as info:
        load_settings(cfg, env)
    assert message in str(info.value)


def test_mail_settings_and_their_defaults(tmp_path: Path) -> None:
    cfg = write(tmp_path, BASE)
    env = {"DECROCHE_DATA_DIR": str(tmp_path / "data")}
    s = load_settings(cfg, env)
    assert (s.smtp_url, s.mail_from) == (None, "Décroché <decroche@localhost>")
    assert (s.twilio_calls_per_second, s.campaign_tick_s) == (1.0, 15.0)
    env["DECROCHE_PUBLIC_URL"] = "https://decroche.ville.fr"
    env["DECROCHE_SMTP_URL"] = "smtp://qualite%40ville.fr:p%3Ass@mail.ville.fr?starttls=1"
    s = load_settings(cfg, env)
    assert s.mail_from == "Décroché <decroche@decroche.ville.fr>"
    server = parse_smtp_url(s.smtp_url or "")
    assert (server.host, server.port, server.starttls, server.implicit_tls) == (
        "mail.ville.fr", 587, True, False,
    )  # fmt: skip
    assert (server.username, server.password) == ("qualite@ville.fr", "p:ss")
    assert parse_smtp_url("smtps://mail.ville.fr").port == 465
    assert parse_smtp_url("smtp://relay").port == 25


def test_secret_key_is_generated_once(tmp_path: Path) -> None:
    cfg = write(tmp_path, BASE)
    env = {"DECROCHE_DATA_DIR": str(tmp_path / "data")}
    first = load_settings(cfg, env).secret_key
    assert len(first) >= 32
    assert load_settings(cfg, env).secret_key == first
    assert load_settings(cfg, {**env, "DECROCHE_SECRET_KEY": "given"}).secret_key == "given"


def test_config_path_comes_from_the_environment(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        BASE.replace('timezone = "Europe/Paris"', 'timezone = "Europe/Paris"\nname = "Ville de Z"'),
    )
    s = load_settings(None, {"DECROCHE_CONFIG": str(cfg), "DECROCHE_SECRET_KEY": "k"})
    assert s.municipality.name == "Ville de Z"
