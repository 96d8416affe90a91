"""The worker's side of a partitioned search: explore one work item for a time slice.

``PartDpor`` is a ``Dpor`` restricted to one subtree; random walks and PCT runs are the
sequential strategies on a range of run indices (see ``partition/__init__.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..execution import Execution, ModelError
from ..explore import Collector, Limits
from ..strategies.dpor import Dpor
from ..strategies.pct import Pct
from ..strategies.random import RandomWalk
from ..strategies.wakeup import Branch, Step, covered, insert
from .items import PartResult, RandomItem, WorkItem, counter_names, random_label
from .wire import Stubs


class SliceCollector(Collector):
    """A Collector that also keeps the execution index of each new report, ends a time
    slice (``budget_s``, ``budget_executions``) and stops on request (``stop()``).  With
    ``hungry``, the slice goes on past ``budget_s`` until ``hungry()`` says that workers
    wait for work."""

    def __init__(self, strategy: str, limits: Limits, stop: Callable | None = None,
                 budget_s: float | None = None, budget_executions: int | None = None,
                 void: Callable[[], bool] | None = None, hungry: Callable | None = None):
        super().__init__(strategy, limits)
        self.report_at: list = []
        self.stop = stop
        self.hungry = hungry
        self.stopped = False            # a limit, a report (stop_on_first) or stop()
        self.end = None if budget_s is None else time.perf_counter() + budget_s
        self.cap = budget_executions
        self.void = void
        self._names = counter_names()

    def add(self, ex: Execution) -> bool:
        if self.void is not None and self.void():
            return False                # the item had nothing to explore
        n0 = len(self.result.reports)
        go = super().add(ex)
        reps = self.result.reports
        if len(reps) > n0:
            at = self.result.executions - 1
            self.report_at.extend((at, r) for r in reps[n0:])
        if go and self.stop is not None and self.stop():
            go = False
        if not go:
            self.stopped = True
        elif (self.end is not None and time.perf_counter() >= self.end and
              (self.hungry is None or self.hungry())) or \
                (self.cap is not None and self.result.executions >= self.cap):
            go = False                  # the slice is over
        return go

    def part(self, item_id: int) -> PartResult:
        r = self.result
        return PartResult(item_id, executions=r.executions,
                          counters={n: getattr(r, n) for n in self._names},
                          fingerprints=set(self._classes), metrics=r.metrics,
                          reports=self.report_at)


class PartDpor(Dpor):
    """``Dpor`` restricted to one work item: it replays the item's prefix, explores the
    given branch at the root (and its choice alternatives), and never backtracks above
    the root.  Wakeup sequences for nodes above the root, and new branches at the root
    itself (the root's other branches are the coordinator's), are collected in
    ``forwarded`` instead of being inserted."""

    def __init__(self, item: WorkItem):
        super().__init__()
        self.item = item
        self.root = len(item.prefix)
        self.execution_id = item.id << 32     # execution ids unique over all items
        self.forwarded: list = []
        self.void = False
        self.root_info: dict | None = None
        self._depth_of: dict[int, int] = {}
        # depth -> what was forwarded there, as a wakeup tree, and the node's nkeys
        self._sent: dict[int, tuple[list, int]] = {}
        self._stubs = Stubs()
        self._replaying = False

    # -- Strategy: one execution -----------------------------------------------------

    def pick(self, ex: Execution, enabled):
        i = ex.nsteps
        path = self.path
        if i < len(path) or i > self.root:
            return super().pick(ex, enabled)
        it = self.item
        if i < self.root:
            name, choices = it.prefix[i]
            self.next_wakeup = [Branch(Step(name, tuple(choices), None, -1, 0), [])]
            self.child_sleep = {}
            self._replaying = True
            try:
                got = super().pick(ex, enabled)
            finally:
                self._replaying = False
            node = path[i]
            self._depth_of[id(node)] = i
            if got is None or node.taken is None or node.taken[0] != name:
                raise ModelError(f"work item prefix diverged at step {i}: {name} cannot "
                                 "run; the model is not deterministic")
            return got
        # the root
        self.child_sleep = dict(it.sleep)
        b = it.branch
        if b is None:                         # the first item: a free choice
            self.next_wakeup = []
        else:
            if b.step.task in it.done or all(t.name != b.step.task for t in enabled):
                self.void = True              # nothing to explore here
                return None
            self.next_wakeup = [b]
        got = super().pick(ex, enabled)
        node = path[i]
        self._depth_of[id(node)] = i
        node.done = dict(it.done)
        if got is None:
            return None
        if b is not None and node.taken[0] != b.step.task:
            raise ModelError(f"work item {it.id}: {b.step.task} did not run at its root")
        if not it.first:
            node.first = False
            self.next_wakeup = []
        if b is None:
            self.root_info = self._info(node, i)      # the coordinator's root node
        return got

    def after_step(self, ex: Execution, task, used: tuple) -> None:
        super().after_step(ex, task, used)
        i = ex.nsteps - 1
        if i < self.root:
            self.path[i].choice_todo.clear()  # alternatives above the root: not ours

    def _races_of(self, ex: Execution, q) -> None:
        # The prefix's own races were found by the item that took each of its steps
        # first, in the same execution prefix: only the root's step and later are new.
        if not self._replaying:
            super()._races_of(ex, q)

    def _end_races(self, ex: Execution) -> None:
        if not self.void:                     # a void item ran no execution of its own
            super()._end_races(ex)

    # -- wakeup trees at and above the root --------------------------------------------

    def _insert(self, node, seq) -> bool:
        d = self._depth_of.get(id(node))
        if d is None:
            return super()._insert(node, seq)
        whole = list(seq)
        weak = self.weak_initials
        if d == self.root:
            placed = insert(node.wakeup, seq, node.nkeys, (node.sleep, node.done), weak)
            if placed is None:
                return False                  # covered by the root's sleep or done set
            if placed[0] is not node.wakeup:
                return True                   # it went below the root's branch: ours
            node.wakeup.pop()                 # a new branch at the root: a sibling
        elif d < len(self.item.above) and covered((self.item.above[d],), seq, weak):
            return False                      # covered there
        # what was sent for node d, as a wakeup tree: a sequence that it covers would be
        # dropped by the coordinator too, and is not sent
        sent = self._sent.get(d)
        if sent is None:
            sent = self._sent[d] = ([], self.path[d].nkeys)
        if insert(sent[0], list(whole), sent[1], (), weak) is None:
            return False
        self.forwarded.append((d, self._stubs.sequence(whole)))
        return True

    # -- the frontier ------------------------------------------------------------------

    def frontier(self):
        """The nodes from the root down to where the next execution would branch off,
        with what is left to explore at each: ``([info per node], next wakeup subtree)``."""
        path = self.path
        return [self._info(path[k], k, True) for k in range(self.root, len(path))], \
            self.next_wakeup

    def _info(self, n, k: int, wakeup: bool = False) -> dict:
        """One node as the coordinator needs it (with its wakeup tree as it is now: a
        PartResult copies it when it is pickled)."""
        ops = self._stubs
        return {"depth": k, "taken": (n.taken[0], tuple(n.taken[1])), "first": n.first,
                "choice_todo": [tuple(c) for c in n.choice_todo],
                "enabled": list(n.enabled), "pending": ops.ops_dict(n.pending),
                "sleep": ops.ops_dict(n.sleep), "done": ops.ops_dict(n.done),
                "wakeup": n.wakeup if wakeup else None, "nkeys": n.nkeys}

    # -- one slice ---------------------------------------------------------------------

    def run(self, factory, stop: Callable[[], bool] | None = None,
            hungry: Callable[[], bool] | None = None) -> PartResult:
        """Explore the item for one time slice (``Dpor.explore`` with a collector that
        ends it), then hand back what was found and the frontier."""
        it = self.item
        limits = Limits(max_steps=it.max_steps, detect_races=it.detect_races,
                        stop_on_first=it.stop_on_first)
        col = SliceCollector(self.name, limits, stop, it.budget_s, it.budget_executions,
                             void=lambda: self.void, hungry=hungry)
        t0 = time.perf_counter()
        out = self.explore(factory, limits, col)
        res = col.part(it.id)
        res.interrupted = out.interrupted
        more = bool(self.path) and not self.void and not out.interrupted
        res.finished = not more and not out.interrupted
        res.stopped = col.stopped
        res.forwarded = self.forwarded
        res.root = self.root_info
        if more:
            res.frontier = self.frontier()
        res.elapsed_s = time.perf_counter() - t0
        return res


def run_item(factory, item, stop: Callable[[], bool] | None = None,
             hungry: Callable[[], bool] | None = None) -> PartResult:
    """Explore one work item (a ``WorkItem`` or a ``RandomItem``) in this process.
    ``stop()``: end now; ``hungry()``: end a DPOR slice only once other workers wait."""
    if isinstance(item, RandomItem):
        return _run_random(factory, item, stop)
    return PartDpor(item).run(factory, stop, hungry)


def _run_random(factory, item: RandomItem, stop) -> PartResult:
    limits = Limits(max_steps=item.max_steps, detect_races=item.detect_races,
                    stop_on_first=item.stop_on_first, time_limit=item.budget_s)
    col = SliceCollector(random_label(item.depth), limits, stop)
    # run i of RandomWalk(seed) or Pct(seed) uses seed + i: runs start.. are those of
    # the same strategy seeded with seed + start
    seed = item.seed + item.start
    strategy = RandomWalk(item.runs, seed) if item.depth is None else \
        Pct(item.runs, item.depth, seed)
    res = strategy.explore(factory, limits, col)
    part = col.part(item.id)
    part.interrupted = res.interrupted
    part.finished = res.executions == item.runs and not res.interrupted
    part.stopped = col.stopped
    part.elapsed_s = res.elapsed_s
    return part
