"""Seeded random walks: each execution picks uniformly among the runnable tasks and among
a choice's values.  The seed of run ``i`` is ``seed + i``, so any run can be repeated
alone."""

from __future__ import annotations

import random as _random

from ..execution import Execution, Task
from ..explore import Strategy


class RandomWalk(Strategy):
    name = "random"

    def __init__(self, runs: int = 100, seed: int = 0):
        self.runs = runs
        self.seed = seed
        self.rng = _random.Random(seed)
        self.run = 0                    # the next run's index

    def setup(self, ex: Execution) -> None:
        ex.choice_source = self.rng.randrange

    def pick(self, ex: Execution, enabled: list[Task]):
        return self.rng.choice(enabled), ()

    def next_execution(self) -> bool:
        if self.run >= self.runs:
            return False
        self.rng = _random.Random(self.seed + self.run)
        self.run += 1
        return True
