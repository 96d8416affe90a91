"""Seeded random walks: each execution picks uniformly among the runnable tasks and among
a choice's values.  The seed of run ``i`` is ``seed + i``, so any run can be repeated
alone."""

from __future__ import annotations

import random as _random

from ..execution import Execution, Task
from ..explore import Collector, Limits, Result, run_execution


class RandomWalk:
    name = "random"

    def __init__(self, runs: int = 100, seed: int = 0):
        self.runs = runs
        self.seed = seed
        self.rng = _random.Random(seed)

    def setup(self, ex: Execution) -> None:
        ex.choice_source = self.rng.randrange

    def pick(self, ex: Execution, enabled: list[Task]):
        return self.rng.choice(enabled), ()

    def after_step(self, ex, task, used) -> None:
        pass

    def explore(self, factory, limits: Limits, collector: Collector | None = None) -> Result:
        col = collector or Collector(self.name, limits)
        try:
            for i in range(self.runs):
                self.rng = _random.Random(self.seed + i)
                ex = run_execution(factory, self, limits, setup=self.setup)
                if not col.add(ex):
                    break
        except KeyboardInterrupt:
            col.result.interrupted = True
        return col.finish(False)
