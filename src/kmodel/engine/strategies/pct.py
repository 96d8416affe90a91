"""Probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi, Nagarakatte,
ASPLOS 2010).

Each run gives every task a distinct random priority and picks ``depth - 1`` random change
points among the steps; at each step the enabled task of highest priority runs, and when a
change point is reached the running task drops to a priority below every initial one.  A
bug of depth d (d ordering constraints) is found by one run with probability at least
1/(n * k^(d-1)) for n tasks and k steps.  Tasks spawned during the run get a random
priority when they appear.  Choices are resolved at random.

Runs are seeded: run ``i`` uses ``seed + i``, so any run can be repeated alone, and the
same seed gives the same runs.  The number of steps k is the length of one probe
execution that always runs the first enabled task (not counted as a run).
"""

from __future__ import annotations

import random as _random

from ..execution import Execution, Task
from ..explore import Strategy, run_execution


class Pct(Strategy):
    name = "pct"

    def __init__(self, runs: int = 100, depth: int = 3, seed: int = 0):
        if depth < 1:
            raise ValueError("pct depth must be at least 1")
        self.runs = runs
        self.depth = depth
        self.seed = seed
        self.k = 100
        self.rng = _random.Random(seed)
        self.prio: dict[str, float] = {}
        self.changes: dict[int, int] = {}
        self.run = 0                    # the next run's index

    def label(self) -> str:
        return f"pct(d={self.depth})"

    def begin(self, factory, limits) -> None:
        # k: the length of one probe execution (not counted as a run)
        self.k = max(1, run_execution(factory, _First(), limits).nsteps)

    def next_execution(self) -> bool:
        if self.run >= self.runs:
            return False
        self._start_run(self.run)
        self.run += 1
        return True

    def _start_run(self, i: int) -> None:
        self.rng = _random.Random(self.seed + i)
        self.prio = {}
        points = self.rng.sample(range(1, self.k + 1), min(self.depth - 1, self.k))
        # change point j (1-based) lowers the running task to priority depth - j, below
        # every initial priority (those are >= depth)
        self.changes = {step: self.depth - 1 - j for j, step in enumerate(sorted(points))}

    def setup(self, ex: Execution) -> None:
        ex.choice_source = self.rng.randrange

    def _priority(self, t: Task) -> float:
        p = self.prio.get(t.name)
        if p is None:
            p = self.prio[t.name] = self.depth + self.rng.random()
        return p

    def pick(self, ex: Execution, enabled: list[Task]):
        for t in ex.tasks:           # new tasks get their priority in spawn order
            if t.name not in self.prio:
                self._priority(t)
        best = max(enabled, key=lambda t: self.prio[t.name])
        step = ex.nsteps + 1
        if step in self.changes:
            self.prio[best.name] = self.changes[step]
            best = max(enabled, key=lambda t: self.prio[t.name])
        return best, ()

class _First(Strategy):
    """The probe: always the first enabled task."""

    def pick(self, ex, enabled):
        return enabled[0], ()
