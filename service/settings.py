"""One validated Settings object: the municipality's TOML file plus the environment.

The environment variables are those of ``shared/spec/config.md``. Every outside address
(database, Twilio's API, SMTP) can be overridden, so tests point them at local fakes.
"""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from service.municipality.model import ConfigError, Municipality, load_municipality
from service.outside.mail import parse_smtp_url

REPO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "decroche.toml"


def default_config_path() -> Path:
    """The shipped example municipality: what ``decroche serve`` uses when no file is given."""
    return REPO_CONFIG


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to run, validated once at start-up."""

    municipality: Municipality
    config_path: Path
    database_url: str | None
    data_dir: Path
    public_url: str | None
    twilio_account_sid: str | None
    twilio_auth_token: str | None
    twilio_api_base: str | None
    webhook_secret: str | None
    smtp_url: str | None
    secret_key: str
    admin_token: str | None
    metrics_token: str | None = None
    grids_dir: str | None = None  # DECROCHE_GRIDS_DIR: more mystery-call grid directories
    mail_from: str = "Décroché <decroche@localhost>"  # DECROCHE_MAIL_FROM
    twilio_caller_id: str | None = None  # DECROCHE_TWILIO_CALLER_ID: the number calls come from
    twilio_calls_per_second: float = 1.0  # DECROCHE_TWILIO_CALLS_PER_SECOND
    campaign_tick_s: float = 15.0  # DECROCHE_CAMPAIGN_TICK_S: how often due runs are looked for
    host: str = "127.0.0.1"
    port: int = 8080

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


def _env(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def load_settings(
    config: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Build :class:`Settings` from a config path (or ``DECROCHE_CONFIG``) and the environment.

    Raises :class:`ConfigError` naming the file or variable at fault.
    """
    env = os.environ if env is None else env
    path = Path(config or _env(env, "DECROCHE_CONFIG") or default_config_path())
    municipality = load_municipality(path)
    data_dir = Path(_env(env, "DECROCHE_DATA_DIR") or platformdirs.user_data_dir("decroche"))
    public_url = _env(env, "DECROCHE_PUBLIC_URL")
    if public_url is not None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ConfigError(
                "environment",
                "DECROCHE_PUBLIC_URL",
                f"{public_url!r} is not a base URL like 'https://decroche.ville.fr'",
            )
        public_url = public_url.rstrip("/")
    database_url = _env(env, "DATABASE_URL")
    if database_url is not None and not database_url.startswith(("postgres://", "postgresql://")):
        raise ConfigError(
            "environment",
            "DATABASE_URL",
            "expected a PostgreSQL DSN like 'postgresql://user@host:5432/db'",
        )
    smtp_url = _env(env, "DECROCHE_SMTP_URL")
    if smtp_url is not None:
        try:
            parse_smtp_url(smtp_url)
        except ValueError as exc:
            raise ConfigError("environment", "DECROCHE_SMTP_URL", str(exc)) from None
    return Settings(
        municipality=municipality,
        config_path=path,
        database_url=database_url,
        data_dir=data_dir,
        public_url=public_url,
        twilio_account_sid=_env(env, "TWILIO_ACCOUNT_SID"),
        twilio_auth_token=_env(env, "TWILIO_AUTH_TOKEN"),
        twilio_api_base=_env(env, "DECROCHE_TWILIO_API_BASE"),
        webhook_secret=_env(env, "DECROCHE_WEBHOOK_SECRET"),
        smtp_url=smtp_url,
        secret_key=_env(env, "DECROCHE_SECRET_KEY") or _stored_secret(data_dir),
        admin_token=_env(env, "DECROCHE_ADMIN_TOKEN"),
        metrics_token=_env(env, "DECROCHE_METRICS_TOKEN"),
        grids_dir=_env(env, "DECROCHE_GRIDS_DIR"),
        mail_from=_mail_from(env, public_url),
        twilio_caller_id=_e164(env, "DECROCHE_TWILIO_CALLER_ID"),
        twilio_calls_per_second=_positive(env, "DECROCHE_TWILIO_CALLS_PER_SECOND", 1.0),
        campaign_tick_s=_positive(env, "DECROCHE_CAMPAIGN_TICK_S", 15.0),
    )


def _mail_from(env: Mapping[str, str], public_url: str | None) -> str:
    """``DECROCHE_MAIL_FROM``, else an address at the public host (or localhost)."""
    given = _env(env, "DECROCHE_MAIL_FROM")
    if given is not None:
        if "@" not in parseaddr(given)[1]:
            raise ConfigError(
                "environment", "DECROCHE_MAIL_FROM", f"{given!r} is not an e-mail address"
            )
        return given
    host = urlsplit(public_url).hostname if public_url else None
    return f"Décroché <decroche@{host or 'localhost'}>"


def _e164(env: Mapping[str, str], name: str) -> str | None:
    value = _env(env, name)
    if value is not None and not re.fullmatch(r"\+[1-9][0-9]{6,14}", value):
        raise ConfigError(
            "environment", name, f"{value!r} is not an E.164 number like +33100000000"
        )
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _env(env, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (number > 0 and math.isfinite(number)):
        raise ConfigError("environment", name, f"{value!r} is not a positive number")
    return number


def _stored_secret(data_dir: Path) -> str:
    """The secret generated once into the data directory (created on first use).

    It keys caller pseudonyms: losing it means a returning caller is no longer recognised,
    so it is written once, atomically, and never regenerated.
    """
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".secret_key.{os.getpid()}"
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        # link() fails if another process won the race; then its key is the key.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            "environment",
            "DECROCHE_DATA_DIR",
            f"cannot write the secret key into {data_dir} ({exc.strerror}); "
            "set DECROCHE_SECRET_KEY or a writable DECROCHE_DATA_DIR",
        ) from None
