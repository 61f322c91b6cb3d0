"""Seeded randomness that stays the same across Python versions.

Python guarantees that ``random.Random(seed).random()`` gives the same sequence in every
version; ``shuffle``, ``choice`` and ``randrange`` are free to change. The planner promises
« same file, same seed, same plan », so it draws only through ``random()``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


class Rng:
    def __init__(self, seed: int | str) -> None:
        self._r = random.Random(str(seed))

    def random(self) -> float:
        return self._r.random()

    def below(self, n: int) -> int:
        """A whole number in 0..n-1."""
        return min(int(self._r.random() * n), n - 1)

    def shuffled(self, items: Sequence[T]) -> list[T]:
        out = list(items)
        for i in range(len(out) - 1, 0, -1):
            j = self.below(i + 1)
            out[i], out[j] = out[j], out[i]
        return out

    def noise(self, n: int, scale: float) -> list[float]:
        return [self._r.random() * scale for _ in range(n)]
