"""One check's search, partitioned over a backend: the engines ``strategies.explore``
composes, with the methods of ``strategies.Sequential``."""

from __future__ import annotations

from ..engine import Limits
from ..engine.partition import Partitioned, explore_random, run_item
from ..engine.strategies import Dpor, Naive
from ..progress import Progress
from .backend import pool

# How long a DPOR work item runs before it hands back its frontier (seconds).  The first
# slice runs in this process: a search that ends within it never starts a worker.
SLICE_S = 0.5
FIRST_SLICE_S = 0.25


class Engines:
    """The strategies ``strategies.explore`` composes, partitioned over a backend:
    ``dpor()``, ``random()``, ``pct()``; bounded ``dpor(k)`` and ``naive()`` run in this
    process.  ``progress`` (a ``Progress`` consumer) sees the executions and distinct
    reports as work items finish."""

    def __init__(self, spec, jobs: int | None = None, ray: str | None = None,
                 progress=None, slice_s: float | None = None,
                 first_slice_s: float | None = None):
        self.backend = pool(spec, jobs, ray)
        self.progress = progress
        self.state = Progress()
        self.slice_s = SLICE_S if slice_s is None else slice_s
        self.first_slice_s = FIRST_SLICE_S if first_slice_s is None else first_slice_s
        self.stats: list = []           # per DPOR phase: Partitioned.stats
        self._base = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.backend.close()
        return False

    def _tick(self, executions: int, reports: int) -> None:
        if self.progress is not None:
            self.state.executions = self._base + executions
            self.state.reports = max(self.state.reports, reports)
            self.progress(self.state)

    def dpor(self, preemption_bound: int | None = None):
        if preemption_bound is not None:
            return _InProcess(self, Dpor(preemption_bound=preemption_bound))
        return _PartitionedDpor(self)

    def random(self, runs: int, seed: int):
        return _PartitionedRandom(self, runs, seed)

    def pct(self, runs: int, depth: int, seed: int):
        return _PartitionedRandom(self, runs, seed, depth)

    def naive(self):
        return _InProcess(self, Naive())


class _InProcess:
    """A sequential strategy run here, its executions counted in the progress."""

    def __init__(self, engines: Engines, strategy):
        self.engines = engines
        self.strategy = strategy

    def explore(self, factory, limits: Limits):
        engines = self.engines
        n = [0]

        def make():
            if n[0]:
                engines._tick(n[0], 0)
            n[0] += 1
            return factory()

        res = self.strategy.explore(make, limits)
        engines._tick(res.executions, len(res.reports))
        engines._base += res.executions
        return res


class _PartitionedDpor:
    def __init__(self, engines: Engines):
        self.engines = engines

    def explore(self, factory, limits: Limits):
        engines = self.engines
        part = Partitioned(engines.backend, slice_s=engines.slice_s,
                           first_slice_s=engines.first_slice_s,
                           first=lambda item: run_item(factory, item),
                           progress=engines._tick)
        res = part.explore(limits)
        engines.stats.append(part.stats)
        engines._base += res.executions
        return res


class _PartitionedRandom:
    def __init__(self, engines: Engines, runs: int, seed: int, depth: int | None = None):
        self.engines = engines
        self.runs = runs
        self.seed = seed
        self.depth = depth

    def explore(self, factory, limits: Limits):
        engines = self.engines
        res = explore_random(engines.backend, self.runs, self.seed, limits,
                             depth=self.depth, progress=engines._tick)
        engines._base += res.executions
        return res


__all__ = ["Engines", "SLICE_S", "FIRST_SLICE_S"]
