"""Where grid files are found: the grids a campaign can name by slug.

Searched in order, a directory earlier in the list shadowing the same slug and version
later: ``DECROCHE_GRIDS_DIR`` (one or more directories, ``:``-separated), the ``grids/``
directory beside the municipality's configuration file, then the shipped ``config/grids/``.
Grids registered through the API live in the database (``grids/store.py``) and join these.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from campaigns.grids.model import Grid, load_grid
from service.municipality.tables import ConfigError
from service.settings import REPO_CONFIG, Settings

SHIPPED = REPO_CONFIG.parent / "grids"


def search_path(settings: Settings) -> tuple[Path, ...]:
    """The grid directories of a configuration, most specific first, without repeats."""
    dirs: list[Path] = []
    if settings.grids_dir:
        dirs.extend(Path(p) for p in settings.grids_dir.split(os.pathsep) if p)
    dirs.append(settings.config_path.resolve().parent / "grids")
    dirs.append(SHIPPED)
    out: list[Path] = []
    for d in dirs:
        r = d.resolve()
        if r not in out:
            out.append(r)
    return tuple(out)


@dataclass
class GridLibrary:
    """The grids found in files: ``(slug, version)`` → grid and the file it came from."""

    grids: dict[tuple[str, int], tuple[Grid, Path]] = field(default_factory=dict)

    @classmethod
    def load(cls, dirs: Iterable[Path]) -> GridLibrary:
        """Read every ``*.toml`` of the directories; a faulty file is a :class:`ConfigError`."""
        lib = cls()
        for d in dirs:
            if not d.is_dir():
                continue
            here: dict[tuple[str, int], Path] = {}
            for path in sorted(d.glob("*.toml")):
                grid = load_grid(path)
                key = (grid.slug, grid.version)
                if key in here:
                    raise ConfigError(
                        str(path),
                        "version",
                        f"{grid.label} is also defined in {here[key].name}; "
                        "give one of them a higher version",
                    )
                here[key] = path
                lib.grids.setdefault(key, (grid, path))  # earlier directories win
        return lib

    def latest(self, slug: str) -> Grid | None:
        versions = [g for (s, _), (g, _) in self.grids.items() if s == slug]
        return max(versions, key=lambda g: g.version, default=None)

    def get(self, slug: str, version: int | None) -> Grid | None:
        if version is None:
            return self.latest(slug)
        found = self.grids.get((slug, version))
        return found[0] if found else None

    def source(self, grid: Grid) -> Path | None:
        found = self.grids.get((grid.slug, grid.version))
        return found[1] if found else None
