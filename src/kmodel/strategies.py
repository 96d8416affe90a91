"""The strategies a check can use (``--strategy``), and how a check composes them.

``STRATEGIES`` names each with its summary (``kmodel list``).  ``explore(spec, factory,
engines)`` runs the one the spec names; ``engines`` makes the engine strategies it is
composed of: ``Sequential`` runs them in this process, ``kmodel.workers.Engines`` gives
partitioned ones with the same methods, so every strategy composes the same way on one
core and on many.
"""

from __future__ import annotations

import time

from .engine import Limits, Result
from .engine.strategies import Dpor, Naive, Pct, RandomWalk

STRATEGIES = {
    "default": "bounded search (at most 2 preemptions) for a fast first report, then dpor "
               "to completion",
    "dpor": "exhaustive: one execution per class of equivalent interleavings",
    "bounded": "DPOR restricted to at most --preemptions K preemptions (CHESS)",
    "random": "seeded random walks (--runs N)",
    "pct": "probabilistic concurrency testing: seeded runs (--runs N) with random task "
           "priorities and depth-1 priority change points (depth 3 by default)",
    "naive": "every interleaving, no reduction (a yardstick for small scenarios)",
}


def limits(spec, **over) -> Limits:
    """The engine's limits for a check (``CheckSpec``), with ``over`` replacing some."""
    lim = Limits(max_steps=spec.max_steps, max_executions=spec.max_executions,
                 time_limit=spec.time_limit, stop_on_first=spec.stop_on_first)
    for k, v in over.items():
        setattr(lim, k, v)
    return lim


class Sequential:
    """The engine strategies ``explore`` composes, run in this process."""

    @staticmethod
    def dpor(preemption_bound: int | None = None):
        return Dpor(preemption_bound=preemption_bound)

    @staticmethod
    def random(runs: int, seed: int):
        return RandomWalk(runs, seed)

    @staticmethod
    def pct(runs: int, depth: int, seed: int):
        return Pct(runs, depth, seed)

    @staticmethod
    def naive():
        return Naive()


def explore(spec, factory, engines=Sequential) -> tuple[Result, str]:
    """Explore ``factory``'s executions with the spec's strategy: (result, the strategy
    as it ran, e.g. "bounded(k=1)+dpor")."""
    s = spec.strategy
    t0 = time.perf_counter()          # report times count from here, across phases
    if s == "dpor":
        return engines.dpor().explore(factory, limits(spec, started=t0)), "dpor"
    if s == "naive":
        return engines.naive().explore(factory, limits(spec, started=t0)), "naive"
    if s == "bounded":
        return bounded(spec, factory, spec.preemptions, engines=engines, started=t0), \
            f"bounded(k={spec.preemptions})"
    if s == "random":
        return engines.random(spec.runs, spec.seed).explore(
            factory, limits(spec, started=t0)), "random"
    if s == "pct":
        return engines.pct(spec.runs, spec.depth, spec.seed).explore(
            factory, limits(spec, started=t0)), f"pct(d={spec.depth})"
    # default: iterative context bounding finds a report with the fewest preemptions;
    # without one, dpor decides (exhaustively, within the limits).
    res = bounded(spec, factory, min(spec.preemptions, 2), stop_on_first=True,
                  engines=engines, started=t0)
    if res.interrupted:
        return res, res.strategy
    if res.reports:
        used = res.strategy
        if not spec.stop_on_first:
            full = engines.dpor().explore(
                factory, limits(spec, time_limit=remaining(spec, t0), started=t0))
            _after(res, full)
            full.reports = res.reports + [r for r in full.reports
                                          if r.key() not in {x.key() for x in res.reports}]
            full.first_report_execution = res.first_report_execution
            full.first_report_s = res.first_report_s
            full.executions += res.executions
            return full, f"{used}+dpor"
        return res, used
    full = engines.dpor().explore(
        factory, limits(spec, time_limit=remaining(spec, t0), started=t0))
    _after(res, full)
    full.executions += res.executions
    return full, "dpor"


def _after(earlier: Result, later: Result) -> None:
    """Number ``later``'s report executions on from ``earlier``'s executions: a phase's
    collector counts its own from one."""
    for r in later.reports:
        if r.found_execution is not None:
            r.found_execution += earlier.executions
    if later.first_report_execution is not None:
        later.first_report_execution += earlier.executions


def remaining(spec, t0: float) -> float | None:
    """What is left of the check's time cap, which is for the whole check: a phase that
    starts past it runs one execution."""
    if spec.time_limit is None:
        return None
    return max(0.001, spec.time_limit - (time.perf_counter() - t0))


def bounded(spec, factory, k: int, stop_on_first: bool | None = None,
            engines=Sequential, started: float | None = None) -> Result:
    """Iterative context bounding: K = 0, 1, ... k; the first bound that reports wins.
    The time limit is for all the bounds together; report times count from ``started``
    (default: now)."""
    total = None
    t0 = time.perf_counter()
    started = t0 if started is None else started
    for bound in range(k + 1):
        lim = limits(spec, stop_on_first=spec.stop_on_first if stop_on_first is None
                     else stop_on_first, time_limit=remaining(spec, t0), started=started)
        res = engines.dpor(preemption_bound=bound).explore(factory, lim)
        if total is not None:
            _after(total, res)
            res.executions += total.executions
        total = res
        if res.reports or res.complete or res.interrupted:
            break
    return total


__all__ = ["STRATEGIES", "Sequential", "explore", "bounded", "limits", "remaining"]
