"""Reading validated TOML tables: a fault names the file, the key and what is wrong.

Shared by every TOML file Décroché reads (the municipality, mystery-call grids and
campaigns): each table is read through a :class:`TableReader`, which remembers the keys it
was asked for so that unknown ones are refused, and weekly hours are parsed one way.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Any

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
INTERVAL_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Interval = tuple[time, time]


class ConfigError(ValueError):
    """A configuration fault a user can fix; the message names the file and the key."""

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        super().__init__(f"{path}: {key}: {problem}" if key else f"{path}: {problem}")


def load_toml(path: str | Path) -> dict[str, Any]:
    """The decoded TOML of a file; a :class:`ConfigError` when it cannot be read or parsed."""
    p = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(p, "", f"cannot read the file ({exc.strerror})") from None
    return parse_toml(raw, p)


def parse_toml(raw: bytes, path: str) -> dict[str, Any]:
    """Decode TOML bytes (a file's or a request body's) named ``path`` in messages."""
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(path, "", "the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML ({exc})") from None


class TableReader:
    """Reads one TOML table, remembering which keys were used so unknown ones are refused."""

    def __init__(self, data: Any, path: str, key: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(path, key or "(top level)", "expected a table")
        self.data: dict[str, Any] = data
        self.path = path
        self.prefix = key
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), problem)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.seen.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        # bool is an int in Python; a threshold of `true` is a mistake, not 1.
        if isinstance(value, bool) and kind is not bool and bool not in _as_tuple(kind):
            raise self.fail(name, f"expected {_kind_name(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(name, f"expected {_kind_name(kind)}, got {type(value).__name__}")
        return value

    def require(self, name: str, kind: type | tuple[type, ...]) -> Any:
        if name not in self.data:
            self.seen.add(name)
            raise self.fail(name, "is required")
        return self.get(name, kind)

    def strings(self, name: str) -> list[str]:
        values = self.get(name, list, [])
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.fail(f"{name}[{i}]", "expected a string")
        return list(values)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise self.fail(
                unknown[0], "unknown key (check its spelling against the documentation)"
            )


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "a whole number",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
        date: "a date",
    }
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def read_dates(r: TableReader, name: str) -> frozenset[date]:
    out: set[date] = set()
    for i, v in enumerate(r.get(name, list, [])):
        if isinstance(v, date) and not hasattr(v, "hour"):
            out.add(v)
            continue
        try:
            out.add(date.fromisoformat(v) if isinstance(v, str) else date.fromisoformat(""))
        except ValueError:
            raise r.fail(f"{name}[{i}]", f"{v!r} is not a date (expected YYYY-MM-DD)") from None
    return frozenset(out)


def _parse_interval(text: str) -> Interval | None:
    m = INTERVAL_RE.match(text)
    if not m:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        return None
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    return (start, end) if start < end else None


def read_hours(data: Any, path: str, key: str) -> dict[int, tuple[Interval, ...]]:
    r = TableReader(data, path, key)
    out: dict[int, tuple[Interval, ...]] = {}
    for wd, day in enumerate(WEEKDAYS):
        texts = r.strings(day)
        intervals: list[Interval] = []
        for i, text in enumerate(texts):
            iv = _parse_interval(text)
            if iv is None:
                raise r.fail(
                    f"{day}[{i}]",
                    f"{text!r} is not an interval like '08:30-12:00' "
                    "(start before end, 24-hour clock)",
                )
            intervals.append(iv)
        intervals.sort()
        for a, b in itertools.pairwise(intervals):
            if b[0] < a[1]:
                raise r.fail(day, f"intervals {_fmt(a)} and {_fmt(b)} overlap")
        if intervals:
            out[wd] = tuple(intervals)
    r.finish()
    return out


def _fmt(iv: Interval) -> str:
    end = "24:00" if iv[1] == time.max else iv[1].strftime("%H:%M")
    return f"{iv[0].strftime('%H:%M')}-{end}"
