"""Mystery-call grids: the TOML file, validated into a :class:`Grid` (pure).

The contract is ``shared/spec/campaigns.md`` (« Grids »). A grid names its ``slug`` and
``version``; once an evaluation uses a version it is never changed, only superseded by a
higher version (``campaigns/grids/store.py`` enforces it). Every fault — unknown key, unknown
item kind, duplicate id, weights summing to zero — raises a :class:`ConfigError` naming the
file and the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from service.municipality.model import SLUG_RE
from service.municipality.tables import TableReader, load_toml

ITEM_KINDS = ("yes_no", "scale", "measured", "choice", "text")
CRITICAL_FAIL = ("zero", "flag")
NA = "na"  # the answer that marks an item not applicable


class OptionJson(TypedDict):
    id: str
    label: str
    value: float


class ItemJson(TypedDict):
    """An item's JSON form: the scored keys only on scored items, each kind's own."""

    id: str
    label: str
    kind: str
    weight: NotRequired[float]
    na_allowed: NotRequired[bool]
    critical: NotRequired[bool]
    help: NotRequired[str]
    max: NotRequired[int | None]  # scale
    threshold_s: NotRequired[float | None]  # measured
    options: NotRequired[list[OptionJson]]  # choice


class SectionJson(TypedDict):
    id: str
    title: str
    items: list[ItemJson]


class GridJson(TypedDict):
    """``Grid.as_dict``: the canonical JSON form (stored, served, hashed)."""

    slug: str
    version: int
    name: str
    description: str
    scale: float
    pass_mark: float
    excellence_mark: float
    critical_fail: str
    sections: list[SectionJson]


@dataclass(frozen=True)
class Option:
    """One named answer of a ``choice`` item, worth ``value`` in 0..1."""

    id: str
    label: str
    value: float


@dataclass(frozen=True)
class Item:
    """One line of the grid an evaluator answers."""

    id: str
    label: str
    kind: str
    weight: float = 1.0
    na_allowed: bool = False
    critical: bool = False
    help: str = ""
    max: int | None = None  # scale
    threshold_s: float | None = None  # measured
    options: tuple[Option, ...] = ()  # choice

    @property
    def scored(self) -> bool:
        return self.kind != "text"

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    items: tuple[Item, ...]


@dataclass(frozen=True)
class Grid:
    """A validated grid; ``as_dict`` is its canonical JSON form (stored, served, hashed)."""

    slug: str
    version: int
    name: str
    scale: float
    pass_mark: float
    excellence_mark: float
    critical_fail: str
    sections: tuple[Section, ...]
    description: str = ""

    def items(self) -> Iterator[tuple[Section, Item]]:
        for section in self.sections:
            for item in section.items:
                yield section, item

    def item(self, item_id: str) -> Item | None:
        return next((it for _, it in self.items() if it.id == item_id), None)

    @property
    def label(self) -> str:
        return f"{self.slug} v{self.version}"

    def as_dict(self) -> GridJson:
        return {
            "slug": self.slug,
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "scale": self.scale,
            "pass_mark": self.pass_mark,
            "excellence_mark": self.excellence_mark,
            "critical_fail": self.critical_fail,
            "sections": [
                {
                    "id": s.id,
                    "title": s.title,
                    "items": [_item_dict(it) for it in s.items],
                }
                for s in self.sections
            ],
        }

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON: two files with the same content have one digest."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _item_dict(it: Item) -> ItemJson:
    out: ItemJson = {"id": it.id, "label": it.label, "kind": it.kind}
    if it.scored:
        out |= {"weight": it.weight, "na_allowed": it.na_allowed, "critical": it.critical}
    if it.help:
        out["help"] = it.help
    if it.kind == "scale":
        out["max"] = it.max
    if it.kind == "measured":
        out["threshold_s"] = it.threshold_s
    if it.kind == "choice":
        out["options"] = [{"id": o.id, "label": o.label, "value": o.value} for o in it.options]
    return out


def load_grid(path: str | Path) -> Grid:
    """Read and validate one grid file."""
    return parse_grid(load_toml(path), str(path))


def parse_grid(data: Mapping[str, Any], path: str) -> Grid:
    """Validate the decoded TOML (or the same structure as JSON) of a grid."""
    top = TableReader(data, path, "")
    slug = top.require("slug", str)
    if not SLUG_RE.match(slug):
        raise top.fail("slug", f"{slug!r} must be lowercase letters, digits and dashes")
    version = top.require("version", int)
    if version < 1:
        raise top.fail("version", "must be a whole number from 1")
    name = top.require("name", str)
    description = top.get("description", str, "")
    scale = _number(top, "scale", 10.0)
    if scale <= 0:
        raise top.fail("scale", "must be positive (scores are reported out of it, e.g. 10)")
    pass_mark = _number(top, "pass_mark", 0.7 * scale)
    if not 0 <= pass_mark <= scale:
        raise top.fail("pass_mark", f"{pass_mark:g} is not between 0 and the scale ({scale:g})")
    excellence = _number(top, "excellence_mark", scale)
    if not pass_mark <= excellence <= scale:
        raise top.fail(
            "excellence_mark",
            f"{excellence:g} is not between the pass mark ({pass_mark:g}) and the scale "
            f"({scale:g})",
        )
    critical_fail = top.get("critical_fail", str, "zero")
    if critical_fail not in CRITICAL_FAIL:
        raise top.fail(
            "critical_fail",
            f"{critical_fail!r} is not one of {', '.join(CRITICAL_FAIL)} "
            "(zero: a failed critical item sets the score to 0; flag: keeps it, fails the call)",
        )
    raw_sections = top.require("sections", list)
    if not raw_sections:
        raise top.fail("sections", "at least one [[sections]] entry is required")
    ids: dict[str, str] = {}
    sections = tuple(_section(s, path, f"sections[{i}]", ids) for i, s in enumerate(raw_sections))
    top.finish()
    if sum(it.weight for s in sections for it in s.items if it.scored) <= 0:
        raise top.fail("sections", "the weights of the scored items sum to zero: nothing to score")
    return Grid(
        slug=slug,
        version=version,
        name=name,
        scale=scale,
        pass_mark=pass_mark,
        excellence_mark=excellence,
        critical_fail=critical_fail,
        sections=sections,
        description=description,
    )


def _number(r: TableReader, name: str, default: float) -> float:
    return float(r.get(name, (int, float), default))


def _claim_id(r: TableReader, ids: dict[str, str], value: str) -> None:
    """Section and item ids are one namespace: answers and results are keyed by them."""
    if not SLUG_RE.match(value.replace("_", "-")):
        raise r.fail("id", f"{value!r} must be lowercase letters, digits, dashes or underscores")
    if value == NA:
        raise r.fail("id", f"{NA!r} is reserved (it marks an answer not applicable)")
    if value in ids:
        raise r.fail("id", f"duplicate id {value!r} (already used by {ids[value]})")
    ids[value] = r.prefix


def _section(data: Any, path: str, key: str, ids: dict[str, str]) -> Section:
    r = TableReader(data, path, key)
    sid = r.require("id", str)
    _claim_id(r, ids, sid)
    title = r.require("title", str)
    raw_items = r.require("items", list)
    if not raw_items:
        raise r.fail("items", "a section needs at least one [[sections.items]] entry")
    items = tuple(_item(it, path, f"{key}.items[{i}]", ids) for i, it in enumerate(raw_items))
    r.finish()
    return Section(id=sid, title=title, items=items)


def _item(data: Any, path: str, key: str, ids: dict[str, str]) -> Item:
    r = TableReader(data, path, key)
    iid = r.require("id", str)
    _claim_id(r, ids, iid)
    label = r.require("label", str)
    kind = r.require("kind", str)
    if kind not in ITEM_KINDS:
        raise r.fail("kind", f"unknown kind {kind!r} (expected one of {', '.join(ITEM_KINDS)})")
    help_text = r.get("help", str, "")
    if kind == "text":
        for name in ("weight", "na_allowed", "critical"):
            if name in r.data:
                raise r.fail(name, "a text item is a comment, not scored: remove this key")
        r.finish()
        return Item(id=iid, label=label, kind=kind, weight=0.0, help=help_text)
    weight = _number(r, "weight", 1.0)
    if weight < 0:
        raise r.fail("weight", f"{weight:g} is negative")
    item = Item(
        id=iid,
        label=label,
        kind=kind,
        weight=weight,
        na_allowed=r.get("na_allowed", bool, False),
        critical=r.get("critical", bool, False),
        help=help_text,
        max=_scale_max(r) if kind == "scale" else None,
        threshold_s=_threshold(r) if kind == "measured" else None,
        options=_options(r, path, key) if kind == "choice" else (),
    )
    r.finish()
    return item


def _scale_max(r: TableReader) -> int:
    value = r.require("max", int)
    if not 1 <= value <= 100:
        raise r.fail("max", f"{value} is out of range (a scale item goes from 0 to max, 1..100)")
    return int(value)


def _threshold(r: TableReader) -> float:
    value = float(r.require("threshold_s", (int, float)))
    if not 0 < value <= 3600:
        raise r.fail("threshold_s", f"{value:g} is out of range (seconds, 1 to 3600)")
    return value


def _options(r: TableReader, path: str, key: str) -> tuple[Option, ...]:
    """``[[…options]]`` with ``id``, ``label``, ``value`` — or the short ``{id = value}``."""
    raw = r.require("options", (list, dict))
    if isinstance(raw, dict):
        raw = [{"id": k, "label": k, "value": v} for k, v in raw.items()]
    out: list[Option] = []
    for i, entry in enumerate(raw):
        o = TableReader(entry, path, f"{key}.options[{i}]")
        oid = o.require("id", str)
        if not oid or oid == NA:
            raise o.fail("id", f"{oid!r} cannot name an option")
        if any(x.id == oid for x in out):
            raise o.fail("id", f"duplicate option {oid!r}")
        value = float(o.require("value", (int, float)))
        if not 0 <= value <= 1:
            raise o.fail("value", f"{value:g} is not between 0 and 1")
        out.append(Option(id=oid, label=o.get("label", str, oid), value=value))
        o.finish()
    if len(out) < 2:
        raise r.fail("options", "a choice item needs at least two options")
    return tuple(out)
