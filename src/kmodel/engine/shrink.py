"""Counterexample shrinking: a schedule that shows a report, made as small as we can.

Smaller means, in this order: fewer preemptions (a switch away from a task that could
still run), fewer steps up to the report, fewer tasks taking part up to the report.  The
result is a complete schedule that ``strategies.Replay`` replays to a report of the same
kind in the same function.

1. Preemptions: bounded DPOR with K = 0, 1, ... below the schedule's own count, stopped at
   the first execution that shows the report (and within a budget of executions).
2. Steps and tasks: greedy edits of the schedule up to the report -- cut it at the report,
   drop one step, drop every step of one task, move a run of one task later -- each
   replayed leniently (a step whose task cannot run is skipped; past the edited prefix
   the execution runs on without preemptions), kept when it still shows the report and is
   smaller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .execution import Execution, Task
from .explore import Collector, Limits, Strategy, run_execution
from .report import Report
from .schedule import decode


@dataclass
class Shrunk:
    schedule: list[str]
    report: Report
    before: tuple[int, int, int]      # (preemptions, steps, tasks) of the original
    after: tuple[int, int, int]
    executions: int                   # executions the shrinking ran


class _Lenient(Strategy):
    """Follow a prefix where its steps can run; then run on without preempting."""

    def __init__(self, prefix: list[str]):
        self.steps = [decode(s) for s in prefix]
        self.pos = 0
        self.enabled_log: list[frozenset] = []

    def pick(self, ex: Execution, enabled: list[Task]):
        names = {t.name for t in enabled}
        self.enabled_log.append(frozenset(names))
        while self.pos < len(self.steps):
            name, choices = self.steps[self.pos]
            self.pos += 1
            if name in names:
                return ex.by_name[name], choices
        prev = ex.tasks[ex.ev_task[-1]] if ex.ev_task else None
        if prev is not None and prev in enabled:
            return prev, ()
        return enabled[0], ()


def _measure(schedule: list[str], enabled_log: list[frozenset], step: int):
    names = [decode(s)[0] for s in schedule]
    pre = 0
    for i in range(1, len(names)):
        if names[i] != names[i - 1] and i < len(enabled_log) and \
                names[i - 1] in enabled_log[i]:
            pre += 1
    upto = names[:step + 1]
    return (pre, step + 1, len(set(upto)))


def _matching(ex: Execution, kind: str, function: str):
    for r in ex.reports:
        if r.kind == kind and r.function == function:
            return r
    return None


def _run(factory, prefix, limits):
    dec = _Lenient(prefix)
    ex = run_execution(factory, dec, limits)
    return ex, dec.enabled_log


class _FirstMatch(Collector):
    def __init__(self, kind, function, limits):
        super().__init__("shrink", limits, count_classes=False)
        self.kind, self.function = kind, function
        self.found: Execution | None = None

    def add(self, ex):
        more = super().add(ex)
        if self.found is None and ex.outcome not in ("sleep-blocked", "bound-blocked") and \
                _matching(ex, self.kind, self.function) is not None:
            self.found = ex
            return False
        return more


def shrink(factory, schedule: list[str], kind: str, function: str, limits: Limits,
           time_budget: float = 2.0, max_executions: int = 400) -> Shrunk | None:
    """Shrink ``schedule``; None if it does not show the report to begin with."""
    from .strategies.dpor import Dpor
    t0 = time.perf_counter()
    lim = Limits(max_steps=limits.max_steps, detect_races=limits.detect_races)
    runs = 0

    def left():
        return time_budget - (time.perf_counter() - t0)

    ex, log = _run(factory, schedule, lim)
    runs += 1
    rep = _matching(ex, kind, function)
    if rep is None:
        return None
    best_sched = list(ex.schedule)
    best = _measure(best_sched, log, rep.step)
    before = best

    # 1. fewer preemptions
    for k in range(best[0]):
        if left() <= 0 or runs >= max_executions:
            break
        col = _FirstMatch(kind, function, Limits(
            max_steps=lim.max_steps, detect_races=lim.detect_races,
            max_executions=max(1, max_executions - runs), time_limit=max(0.05, left())))
        Dpor(preemption_bound=k).explore(factory, col.limits, col)
        runs += col.result.executions
        if col.found is not None:
            ex2, log2 = _run(factory, col.found.schedule, lim)
            runs += 1
            rep2 = _matching(ex2, kind, function)
            if rep2 is not None:
                m = _measure(list(ex2.schedule), log2, rep2.step)
                if m < best:
                    best, best_sched = m, list(ex2.schedule)
            break

    # 2. fewer steps, fewer tasks
    improved = True
    while improved and left() > 0 and runs < max_executions:
        improved = False
        for cand in _edits(best_sched, best[1]):
            if left() <= 0 or runs >= max_executions:
                break
            ex2, log2 = _run(factory, cand, lim)
            runs += 1
            rep2 = _matching(ex2, kind, function)
            if rep2 is None:
                continue
            m = _measure(list(ex2.schedule), log2, rep2.step)
            if m < best:
                best, best_sched = m, list(ex2.schedule)
                improved = True
                break

    # the result replays exactly, and shows the report
    from .strategies.replay import Replay
    final = Replay(best_sched).run(factory, lim)
    runs += 1
    rep = _matching(final, kind, function)
    if rep is None:          # cannot happen for a deterministic model; keep the original
        return None
    return Shrunk(best_sched, rep, before, best, runs)


def _edits(schedule: list[str], steps: int):
    """Candidate prefixes, the most promising first."""
    head = schedule[:steps]
    if len(head) < len(schedule):
        yield head
    names = [decode(s)[0] for s in head]
    # runs of one task: (start, end)
    runs = []
    i = 0
    while i < len(names):
        j = i
        while j < len(names) and names[j] == names[i]:
            j += 1
        runs.append((i, j))
        i = j
    # drop every step of one task (fewer tasks)
    for t in dict.fromkeys(names):
        yield [s for s, n in zip(head, names) if n != t]
    # move a run later, next to the following run of the same task (fewer switches)
    for a, (s, e) in enumerate(runs):
        for b in range(a + 2, len(runs)):
            if names[runs[b][0]] == names[s]:
                bs, be = runs[b]
                yield head[:s] + head[e:bs] + head[s:e] + head[bs:]
                break
    # drop one run, then one step (fewer steps)
    for s, e in reversed(runs):
        yield head[:s] + head[e:]
    for i in range(len(head) - 1, -1, -1):
        yield head[:i] + head[i + 1:]
