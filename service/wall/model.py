"""The shape of the wall's snapshot, as ``GET /api/v1/wall`` and the stream give it (pure).

They are ``TypedDict``\\ s: dicts at run time, so the JSON is what it always was, while mypy
checks every key the snapshot, the hub, the views and the benchmark read. A wait, a ratio
or the verdict is ``None`` (JSON ``null``) when there is nothing to compute it from.

``comparable`` drops what changes with the clock alone (``generated_at``,
``longest_wait_s``): the ``Stable…`` shapes are what is left, and each full shape adds its
timing keys to them.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from service.metrics.model import PolicyValues

# A tile's colour (``rules.status``).
TileStatus = Literal["green", "amber", "red"]


class StableNow(TypedDict):
    """« Now » without the longest wait's length (it grows with the clock)."""

    waiting: int  # neither answered nor over
    longest_wait_since: str | None  # ISO instant the longest waiting caller started
    in_conversation: int  # answered, not ended


class Now(StableNow):
    """The calls in progress of a service (or of all): ``snapshot._now_block``."""

    longest_wait_s: float | None


class TodayFigures(TypedDict):
    """The Engagement 8 figures of the current local day the wall shows."""

    received: int
    offered: int
    answered: int
    answer_rate: float | None
    service_level: float | None
    lost: int
    out_of_hours: int
    short_abandoned: int
    asa_s: float | None
    max_wait_s: float | None
    met: bool | None


class StableTile(StableNow):
    service: str  # the slug
    name: str
    open_now: bool
    today: TodayFigures
    callbacks: int  # call-backs open now
    targets: PolicyValues
    status: TileStatus


class Tile(StableTile):
    """One service's tile (configuration order)."""

    longest_wait_s: float | None


class StableTotal(StableNow):
    today: TodayFigures
    callbacks: int


class Total(StableTotal):
    """Every service together."""

    longest_wait_s: float | None


class _Header(TypedDict):
    day: str  # the local day, ISO
    timezone: str
    municipality: str
    rule: str  # the colours' rule, in French


class StableSnapshot(_Header):
    """What ``comparable`` keeps: the snapshot without what changes with the clock alone."""

    services: list[StableTile]
    total: StableTotal


class WallSnapshot(_Header):
    """``GET /api/v1/wall``, and every ``snapshot`` event of ``/api/v1/wall/stream``."""

    generated_at: str  # local ISO instant
    services: list[Tile]
    total: Total
