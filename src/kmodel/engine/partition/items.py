"""Work items (what a worker is asked to explore) and their results, and how results
are folded into one ``Result``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..explore import Result
from .wire import Forest


@dataclass
class WorkItem:
    """A subtree of the DPOR search: reach the root by ``prefix`` (task, choice values per
    step), then explore ``branch`` there (None: choose freely, only for the first item)
    with ``sleep`` and ``done`` as the root's sleep set and tasks handed out before."""
    id: int
    prefix: list
    branch: Any = None
    first: bool = True            # False: a choice alternative of a step already taken
    sleep: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    max_steps: int = 5000
    detect_races: bool = True
    stop_on_first: bool = False
    budget_s: float | None = None         # the time slice; None: to the end
    budget_executions: int | None = None
    # per node of the prefix: its sleeping and handed-out tasks when the item was made
    # (a wakeup sequence one of them starts is not sent back: it would be dropped)
    above: list = field(default_factory=list)

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.branch is not None:
            f = Forest()
            state["branch"] = (f.add([self.branch]), f.rows)
        return state

    def __setstate__(self, state):
        if state.get("branch") is not None:
            i, rows = state["branch"]
            state["branch"] = Forest.decode(rows)[i][0]
        self.__dict__.update(state)


@dataclass
class RandomItem:
    """Runs ``start .. start + runs - 1`` of a random exploration (run i: seed + i): random
    walks, or PCT runs of bug depth ``depth``."""
    id: int
    start: int
    runs: int
    seed: int
    max_steps: int = 5000
    detect_races: bool = True
    stop_on_first: bool = False
    budget_s: float | None = None
    depth: int | None = None      # PCT's; None: random walks


@dataclass
class PartResult:
    """What one work item (one time slice of it) found."""
    item_id: int
    executions: int = 0
    counters: dict = field(default_factory=dict)      # Result's other counts, by name
    fingerprints: set = field(default_factory=set)    # class_hash() of its classes
    metrics: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)       # [(execution index, Report)]
    finished: bool = False        # the whole subtree (or run range) is explored
    stopped: bool = False         # stop_on_first or a stop request ended it early
    interrupted: bool = False
    root: dict | None = None      # the first item's root node (see PartDpor._info())
    frontier: Any = None          # (node infos root..m, next wakeup subtree), if more
    forwarded: list = field(default_factory=list)     # [(depth, Stubs.sequence(seq))]
    elapsed_s: float = 0.0

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.frontier is not None:
            infos, nxt = self.frontier
            f = Forest()
            state["frontier"] = ([dict(i, wakeup=f.add(i["wakeup"])) for i in infos],
                                 f.add(nxt), f.rows)
        return state

    def __setstate__(self, state):
        if state.get("frontier") is not None:
            infos, nxt, rows = state["frontier"]
            lists = Forest.decode(rows)
            state["frontier"] = ([dict(i, wakeup=lists[i["wakeup"]]) for i in infos],
                                 lists[nxt])
        self.__dict__.update(state)


def counter_names() -> tuple:
    """Result's counts of executions that are not a class (sleep_blocked, bound_blocked,
    ...): every plain int field but executions and classes."""
    return tuple(f.name for f in dataclasses.fields(Result)
                 if f.type in ("int", int) and f.name not in ("executions", "classes"))


def fold(res: Result, part, fps: set, seen: set, at: float) -> None:
    """Add one part's executions, counters, metrics and class fingerprints to ``res``,
    and its reports not seen yet, in order (``at``: when its first report was found)."""
    base = res.executions
    res.executions += part.executions
    add_counters(res, part.counters)
    fps |= part.fingerprints
    merge_metrics(res.metrics, part.metrics)
    for idx, rep in part.reports:
        if rep.key() not in seen:
            seen.add(rep.key())
            res.reports.append(rep)
            if res.first_report_execution is None:
                res.first_report_execution = base + idx + 1
                res.first_report_s = at


def add_counters(res: Result, counters: dict) -> None:
    for name, v in counters.items():
        if hasattr(res, name):
            setattr(res, name, getattr(res, name) + v)


def merge_metrics(into: dict, metrics: dict) -> None:
    for name, (lo, hi) in metrics.items():
        cur = into.get(name)
        if cur is None:
            into[name] = [lo, hi]
        else:
            cur[0] = min(cur[0], lo)
            cur[1] = max(cur[1], hi)


def random_label(depth: int | None) -> str:
    """The Result's strategy name of random walks (no depth) or PCT runs."""
    return "random" if depth is None else f"pct(d={depth})"
