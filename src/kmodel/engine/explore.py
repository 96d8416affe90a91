"""Running executions under a strategy, and what a whole exploration found."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from . import execution as _execution
from .execution import Execution, ModelError, Program, Task
from .report import Report


@dataclass
class Limits:
    max_steps: int = 5000              # per execution; beyond it: livelock
    max_executions: int | None = None  # for the whole exploration
    time_limit: float | None = None    # seconds, for the whole exploration
    stop_on_first: bool = False        # stop at the first execution that reports
    detect_races: bool = True
    started: float | None = None       # time.perf_counter() when the check started (for
                                       # report times; default: this exploration's start)


@dataclass
class Result:
    strategy: str
    executions: int = 0
    classes: int = 0
    sleep_blocked: int = 0
    bound_blocked: int = 0     # bounded search: cut short where any step would preempt
    complete: bool = False
    interrupted: bool = False
    elapsed_s: float = 0.0
    reports: list[Report] = field(default_factory=list)   # distinct, first found first
    first_report_execution: int | None = None
    first_report_s: float | None = None
    note: str = ""
    metrics: dict = field(default_factory=dict)   # name -> [min, max] over executions

    def verdict(self) -> str:
        if self.reports:
            return "reports"
        return "clean" if self.complete else "clean-so-far"


class Strategy:
    """How an exploration chooses its executions: pure policy, the loop is ``explore()``.

    The loop asks ``next_execution()`` before each execution (False: the search is over),
    runs it (``setup``, ``prefix``, then ``pick`` and ``after_step`` at every step), and
    hands it to ``after_execution``.  Every hook but ``pick`` has a default that does
    nothing.  ``exhaustive`` strategies explore every class when they run to the end;
    ``complete()`` is asked when ``next_execution()`` says there is nothing left."""

    name = "strategy"
    exhaustive = False
    # the outcome of an execution cut short because ``pick`` returned None
    blocked_outcome = "sleep-blocked"

    def label(self) -> str:
        """The strategy's name in the Result (with its parameters, where they matter)."""
        return self.name

    def begin(self, factory: Callable[[], Program], limits: Limits) -> None:
        """Once, before the first execution."""

    def next_execution(self) -> bool:
        """Get ready for the next execution; False when there is none left."""
        raise NotImplementedError

    def setup(self, ex: Execution) -> None:
        """The execution is made, the program not started yet."""

    def prefix(self) -> tuple[Execution, list] | None:
        """``(base, steps)``: this execution's first steps repeat the ``base`` execution's
        (task name, choices each), so they run bare (``Execution.resume_from``) and
        without consulting ``pick``.  None: no such prefix."""
        return None

    def pick(self, ex: Execution, enabled: list[Task]) -> tuple[Task, tuple] | None:
        """The task to run next (one of ``enabled``) and the choice values its step
        takes (missing ones: 0, or ``ex.choice_source``); None ends the execution as
        ``blocked_outcome``."""
        raise NotImplementedError

    def after_step(self, ex: Execution, task: Task, used: tuple) -> None:
        """``task`` ran a step that resolved the choices ``used`` ((arity, value) each)."""

    def after_execution(self, ex: Execution) -> None:
        """The execution ended (before the collector sees it)."""

    def complete(self) -> bool:
        """Asked once ``next_execution()`` said no more: whether every class was seen."""
        return self.exhaustive

    def explore(self, factory: Callable[[], Program], limits: Limits,
                collector: "Collector | None" = None,
                progress: Callable[[int, int], None] | None = None) -> Result:
        """``explore(self, ...)``."""
        return explore(self, factory, limits, collector, progress)


def explore(strategy: Strategy, factory: Callable[[], Program], limits: Limits,
            collector: "Collector | None" = None,
            progress: Callable[[int, int], None] | None = None) -> Result:
    """The exploration loop, one for every strategy: run executions while the strategy
    has another and the limits allow, collect them, and say whether the search was
    complete.  ``progress(executions, reports)`` is called after each execution.
    Ctrl-C ends the exploration with what it found so far (``Result.interrupted``)."""
    col = collector or Collector(strategy.label(), limits)
    res = col.result
    complete = False
    try:
        strategy.begin(factory, limits)
        while True:
            if not strategy.next_execution():
                complete = strategy.complete()
                break
            ex = run_execution(factory, strategy, limits)
            strategy.after_execution(ex)
            go = col.add(ex)
            if progress is not None:
                progress(res.executions, len(res.reports))
            if not go:
                # stopped by a limit: complete only if that was the last execution
                complete = not strategy.next_execution() and strategy.complete()
                break
    except KeyboardInterrupt:
        res.interrupted = True
    return col.finish(complete)


def run_execution(factory: Callable[[], Program], strategy: Strategy, limits: Limits,
                  setup: Callable[[Execution], None] | None = None) -> Execution:
    """Run one execution from the program's initial state to its end, as ``strategy``
    picks (``setup`` runs after the strategy's own).  Steps of the strategy's
    ``prefix()`` run without bookkeeping (``Execution.resume_from``) and without
    consulting it."""
    ex = Execution(limits.max_steps, limits.detect_races)
    strategy.setup(ex)
    if setup is not None:
        setup(ex)
    prefix = strategy.prefix()
    if prefix is not None:
        ex.resume_from(prefix[0], len(prefix[1]))
    program = factory()
    ex.program = program
    prev, _execution._current = _execution._current, ex
    try:
        program.start(ex)
        _check_start(ex)
        if prefix is not None and prefix[1]:
            by_name = ex.by_name
            for i, (name, choices) in enumerate(prefix[1]):
                task = by_name.get(name)
                if task is None or task.done or not task.pending.enabled():
                    raise ModelError(f"replay diverged at step {i}: {name} cannot run; "
                                     "the model is not deterministic")
                _execution._current = prev
                ex.step(task, choices)
                _execution._current = ex
            ex.take_over()
        max_steps = limits.max_steps
        pick = strategy.pick
        after_step = strategy.after_step
        step = ex.step
        while True:
            enabled = ex.enabled_tasks()
            if not enabled:
                live = ex.live_tasks()
                if live:
                    ex.outcome = "deadlock"
                    ex.blocked = live
                    program.at_deadlock(ex, live)
                else:
                    ex.outcome = "done"
                program.at_end(ex)
                break
            if ex.nsteps >= max_steps:
                ex.outcome = "budget"
                program.at_livelock(ex)
                break
            chosen = pick(ex, enabled)
            if chosen is None:
                ex.outcome = strategy.blocked_outcome
                break
            task, choices = chosen
            _execution._current = prev
            used = step(task, choices)
            _execution._current = ex
            after_step(ex, task, used)
    finally:
        _execution._current = prev
        ex.close()
    for r in ex.reports:
        r.schedule = list(ex.schedule)
    return ex


def _check_start(ex: Execution) -> None:
    if ex.created:
        ex._check_created(ex.tasks[0] if ex.tasks else None)


class Collector:
    """Accumulates executions into a Result: counts, classes, distinct reports."""

    def __init__(self, strategy: str, limits: Limits, count_classes: bool = True):
        self.result = Result(strategy)
        self.limits = limits
        self.count_classes = count_classes
        self._classes: set[int] = set()
        self._keys: set = set()
        self._t0 = time.perf_counter()
        self._since = limits.started if limits.started is not None else self._t0

    def add(self, ex: Execution) -> bool:
        """Take one finished execution; return False when the exploration should stop."""
        res = self.result
        res.executions += 1
        if ex.outcome == "sleep-blocked":
            res.sleep_blocked += 1
        elif ex.outcome == "bound-blocked":
            res.bound_blocked += 1
        elif self.count_classes:
            self._classes.add(ex.class_hash())
        for name, value in ex.metrics.items():
            lo_hi = res.metrics.get(name)
            if lo_hi is None:
                res.metrics[name] = [value, value]
            else:
                lo_hi[0] = min(lo_hi[0], value)
                lo_hi[1] = max(lo_hi[1], value)
        new = False
        for r in ex.reports:
            k = r.key()
            if k not in self._keys:
                self._keys.add(k)
                r.found_execution = res.executions
                r.found_s = time.perf_counter() - self._since
                res.reports.append(r)
                new = True
        if new and res.first_report_execution is None:
            first = res.reports[0]
            res.first_report_execution = first.found_execution
            res.first_report_s = first.found_s
        if self.limits.stop_on_first and res.reports:
            return False
        if self.limits.max_executions is not None and res.executions >= self.limits.max_executions:
            return False
        if self.limits.time_limit is not None and \
                time.perf_counter() - self._t0 >= self.limits.time_limit:
            return False
        return True

    def finish(self, complete: bool) -> Result:
        res = self.result
        res.complete = complete
        res.classes = len(self._classes)
        res.elapsed_s = time.perf_counter() - self._t0
        return res


def bare_replay(factory: Callable[[], Program], schedule: list[str], limits: Limits) -> int:
    """Run a recorded schedule with no bookkeeping at all (no clocks, no trace, no race
    detection): the cost of the model code alone, which the benchmarks measure the
    engine's overhead against.  Returns the number of steps run."""
    from .schedule import decode
    steps = [decode(s) for s in schedule]
    ex = Execution(limits.max_steps, False)
    ex.full = False
    program = factory()
    ex.program = program
    prev, _execution._current = _execution._current, ex
    try:
        program.start(ex)
        ex.created.clear()
        for name, choices in steps:
            task = ex.by_name[name]
            _execution._current = prev
            ex.step(task, choices)
            _execution._current = ex
    finally:
        _execution._current = prev
        ex.close()
    return ex.nsteps
