"""Partitioned exploration: one search split into work items that run anywhere.

The engine's part of scaling out.  It knows nothing of processes, Ray or Linux: a
*backend* (``kmodel.parallel``) runs work items somewhere and hands back their results;
this module says what a work item is, how a worker explores one, and how a coordinator
hands them out and merges what comes back.

DPOR (``Dpor``: optimal DPOR, wakeup trees and sleep sets).  A work item is a subtree of
the search tree: the schedule prefix that reaches its root, the root's sleep set, the
tasks already handed out there (``done``), and the branch to take at the root (a task,
its choice values and the wakeup subtree to follow below it).  A worker explores the
subtree with ``PartDpor``, a ``Dpor`` that replays the prefix and never backtracks above
its root, for a time slice (or, where the backend can say so, until other workers wait
for work).  When the slice ends it hands back its *frontier*: the nodes of its current
path and what is left to explore at each, which the coordinator turns into nodes of its
own and new work items (that is how the work spreads: whichever worker is idle takes the
next item from one queue).  A race whose reversal belongs at a node above the worker's
root is sent back, and the coordinator inserts it there; the worker leaves out what the
coordinator would drop (what a sleeping or handed-out task there starts, as the item
says, and what it sent before).

Why the partitioned search explores every class the sequential one does.  Each work item
is explored completely on its own: the races that lead to the executions below a node
have their reversals at that node or below it, so a subtree's exploration reaches every
class of executions through its root that no task in the root's sleep set starts.  The
coordinator treats its nodes as source-DPOR treats its backtrack sets (Abdulla, Aronis,
Jonsson, Sagonas, POPL 2014): a task counts as explored at a node from the moment its
subtree is handed out, and a reversal that one of the node's explored or sleeping tasks
starts is dropped (that task's subtree covers it, wherever and whenever it runs).  Any
other reversal joins the wakeup tree of the branches not handed out yet, or becomes a new
branch, that is, a new work item.  A subtree is never changed once it is handed out, so
no reversal is lost in a copy a worker no longer reads.

What is identical to the sequential run, and what is not.  The sequential search
explores every class (it is exhaustive), and so does the partitioned one: the same set
of classes, hence the same class count, the same set of report keys and the same
verdict.  The executions are not always the same ones: a subtree handed out early is
explored before a reversal the sequential search would have added to its wakeup tree,
so the subtree finds that class itself, sometimes after an execution that its sleep set
blocks.  Classes are counted by ``Execution.class_hash()``, which is the same in every
process, so the union over work items counts each class once.  Results are merged in
depth-first order, so reports come first found first, and ``stop_on_first`` keeps the
first report in that order (the items after it are dropped).

Bounded search (a preemption bound) is not partitioned: what it explores depends on the
order in which it explores, so only the sequential order gives the sequential result.

Random walks and PCT split by run index: run ``i`` uses seed ``seed + i`` wherever it
runs, so the merged result is the sequential one.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .execution import Execution, ModelError
from .explore import Collector, Limits, Result
from .ops import Op
from .strategies import dpor as _dpor
from .strategies.dpor import Dpor
from .strategies.pct import Pct
from .strategies.random import RandomWalk

_ev = _Ev = _dpor._Ev              # (task, choices, op, execution id, keys comparable)
_branch = _dpor._Branch            # (event, subtree)
_WEv = _dpor._WEv
_BIG = 1 << 60          # "every key comparable": ops pending at one state

# -- what travels between processes -----------------------------------------------------

class OpStub(Op):
    """An op as remembered in a sleep set or a wakeup tree, without the model object it
    touches (which cannot travel between processes): its kind, label and object key."""

    __slots__ = ()

    def __init__(self, kind: int, label: str, key: int, plain: bool = False):
        self.obj = None
        self.kind = kind
        self.label = label
        self.plain = plain
        self.key = key

    def __reduce__(self):
        return (OpStub, (self.kind, self.label, self.key, self.plain))


class _Stubs:
    """Copies of DPOR's records with every op replaced by an ``OpStub``; an op seen again
    gets the same stub (pickled once), as long as the cache is small (it keeps the ops,
    and so the objects of their executions, alive)."""

    def __init__(self):
        self.ops: dict = {}

    def op(self, op):
        if op is None or type(op) is OpStub:
            return op
        s = self.ops.get(op)             # by identity: ops do not define equality
        if s is None:
            if len(self.ops) >= 4096:
                self.ops.clear()
            s = self.ops[op] = OpStub(op.kind, op.label, op.key, op.plain)
        return s

    def ops_dict(self, d: dict) -> dict:
        return {k: self.op(v) for k, v in d.items()}

    def wevs(self, w: list) -> list:
        """A wakeup sequence as tuples of ``_WEv``'s fields (``_WEv(*fields)`` again):
        small to pickle, and an event's clock is the execution's own tuple, which pickle
        writes once however many sequences hold the event."""
        op = self.op
        return [(e.t, e.name, op(e.op), e.vc if type(e.vc) is tuple else tuple(e.vc),
                 e.local, e.choices, e.xid) for e in w]


class _Forest:
    """Wakeup trees in a flat form that pickles without recursion (a frontier nests each
    node's tree in its parent's, hundreds of levels deep): ``rows[i]`` is list i, one
    ``(event fields, index of its subtree's list)`` per branch, the fields in the order
    ``_Ev`` takes them.  A list shared by two trees is encoded once and decoded as one
    list."""

    def __init__(self):
        self.stubs = _Stubs()
        self.rows: list = []
        self._index: dict[int, int] = {}
        self._keep: list = []             # the encoded lists stay alive (their ids)

    def _slot(self, lst: list, todo: list) -> int:
        i = self._index.get(id(lst))
        if i is None:
            i = self._index[id(lst)] = len(self.rows)
            self.rows.append(None)
            self._keep.append(lst)
            todo.append(lst)
        return i

    def add(self, lst: list) -> int:
        todo: list = []
        first = self._slot(lst, todo)
        op = self.stubs.op
        slot = self._slot
        while todo:
            cur = todo.pop()
            self.rows[self._index[id(cur)]] = [
                ((e.name, e.choices, op(e.op), e.xid, e.nk), slot(b.sub, todo))
                for b in cur for e in (b.ev,)]
        return first

    @staticmethod
    def decode(rows: list) -> list:
        lists: list = [[] for _ in rows]
        for out, row in zip(lists, rows):
            for fields, j in row:
                out.append(_branch(_Ev(*fields), lists[j]))
        return lists


class _Sent:
    """The wakeup sequences a worker sent back for one node above its root, as a node for
    ``Dpor._insert`` (no sleeping or explored tasks: the coordinator checks those)."""

    __slots__ = ("sleep", "done", "wut", "nkeys")

    def __init__(self, nkeys: int):
        self.sleep: dict = {}
        self.done: dict = {}
        self.wut: list = []
        self.nkeys = nkeys


# -- work items and their results -------------------------------------------------------

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
            f = _Forest()
            state["branch"] = (f.add([self.branch]), f.rows)
        return state

    def __setstate__(self, state):
        if state.get("branch") is not None:
            i, rows = state["branch"]
            state["branch"] = _Forest.decode(rows)[i][0]
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
    forwarded: list = field(default_factory=list)     # [(depth, _Stubs.wevs(sequence))]
    elapsed_s: float = 0.0

    def __getstate__(self):
        state = dict(self.__dict__)
        if self.frontier is not None:
            infos, nxt = self.frontier
            f = _Forest()
            state["frontier"] = ([dict(i, wut=f.add(i["wut"])) for i in infos],
                                 f.add(nxt), f.rows)
        return state

    def __setstate__(self, state):
        if state.get("frontier") is not None:
            infos, nxt, rows = state["frontier"]
            lists = _Forest.decode(rows)
            state["frontier"] = ([dict(i, wut=lists[i["wut"]]) for i in infos], lists[nxt])
        self.__dict__.update(state)


def _counter_names() -> tuple:
    """Result's counts of executions that are not a class (sleep_blocked, bound_blocked,
    ...): every plain int field but executions and classes."""
    return tuple(f.name for f in dataclasses.fields(Result)
                 if f.type in ("int", int) and f.name not in ("executions", "classes"))


def _fold(res: Result, part, fps: set, seen: set, at: float) -> None:
    """Add one part's executions, counters, metrics and class fingerprints to ``res``,
    and its reports not seen yet, in order (``at``: when its first report was found)."""
    base = res.executions
    res.executions += part.executions
    _add_counters(res, part.counters)
    fps |= part.fingerprints
    _merge_metrics(res.metrics, part.metrics)
    for idx, rep in part.reports:
        if rep.key() not in seen:
            seen.add(rep.key())
            res.reports.append(rep)
            if res.first_report_execution is None:
                res.first_report_execution = base + idx + 1
                res.first_report_s = at


def _add_counters(res: Result, counters: dict) -> None:
    for name, v in counters.items():
        if hasattr(res, name):
            setattr(res, name, getattr(res, name) + v)


def _merge_metrics(into: dict, metrics: dict) -> None:
    for name, (lo, hi) in metrics.items():
        cur = into.get(name)
        if cur is None:
            into[name] = [lo, hi]
        else:
            cur[0] = min(cur[0], lo)
            cur[1] = max(cur[1], hi)


class _ChunkCollector(Collector):
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
        self._names = _counter_names()

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


# -- the worker -------------------------------------------------------------------------

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
        self.xid = item.id << 32          # execution ids unique over all items
        self.forwarded: list = []
        self.void = False
        self.root_info: dict | None = None
        self._depth_of: dict[int, int] = {}
        self._sent: dict = {}             # depth -> what was forwarded there (_Sent)
        self._stubs = _Stubs()
        self._replaying = False

    # -- Decider -------------------------------------------------------------------

    def pick(self, ex: Execution, enabled):
        i = ex.nsteps
        path = self.path
        if i < len(path) or i > self.root:
            return super().pick(ex, enabled)
        it = self.item
        if i < self.root:
            name, choices = it.prefix[i]
            self.next_wut = [_branch(_ev(name, tuple(choices), None, -1, 0), [])]
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
            self.next_wut = []
        else:
            if b.ev.name in it.done or all(t.name != b.ev.name for t in enabled):
                self.void = True              # nothing to explore here
                return None
            self.next_wut = [b]
        got = super().pick(ex, enabled)
        node = path[i]
        self._depth_of[id(node)] = i
        node.done = dict(it.done)
        if got is None:
            return None
        if b is not None and node.taken[0] != b.ev.name:
            raise ModelError(f"work item {it.id}: {b.ev.name} did not run at its root")
        if not it.first:
            node.first = False
            self.next_wut = []
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

    def _insert(self, node, w) -> bool:
        d = self._depth_of.get(id(node))
        if d is None:
            return super()._insert(node, w)
        orig = list(w)
        if d == self.root:
            n = len(node.wut)
            if not super()._insert(node, w):
                return False                  # covered by the root's sleep or done set
            if len(node.wut) == n:
                return True                   # it went below the root's branch: ours
            node.wut.pop()                    # a new branch at the root: a sibling
        elif d < len(self.item.above):
            for q, qop in self.item.above[d].items():
                if qop is not None and self._weak_initial(q, qop, -1, w, _BIG)[0]:
                    return False              # covered there
        # what was sent for node d, as a wakeup tree: a sequence that it covers would be
        # dropped by the coordinator too, and is not sent
        sent = self._sent.get(d)
        if sent is None:
            sent = self._sent[d] = _Sent(self.path[d].nkeys)
        if not super()._insert(sent, list(orig)):
            return False
        self.forwarded.append((d, self._stubs.wevs(orig)))
        return True

    # -- the frontier ------------------------------------------------------------------

    def frontier(self):
        """The nodes from the root down to where the next execution would branch off,
        with what is left to explore at each: ``([info per node], next wakeup subtree)``."""
        path = self.path
        return [self._info(path[k], k, True) for k in range(self.root, len(path))], \
            self.next_wut

    def _info(self, n, k: int, wut: bool = False) -> dict:
        """One node as the coordinator needs it (with its wakeup tree as it is now: a
        PartResult copies it when it is pickled)."""
        ops = self._stubs
        return {"depth": k, "taken": (n.taken[0], tuple(n.taken[1])), "first": n.first,
                "choice_todo": [tuple(c) for c in n.choice_todo],
                "enabled": list(n.enabled), "pending": ops.ops_dict(n.pending),
                "sleep": ops.ops_dict(n.sleep), "done": ops.ops_dict(n.done),
                "wut": n.wut if wut else None, "nkeys": n.nkeys}

    # -- one slice ---------------------------------------------------------------------

    def run(self, factory, stop: Callable[[], bool] | None = None,
            hungry: Callable[[], bool] | None = None) -> PartResult:
        """Explore the item for one time slice (``Dpor.explore`` with a collector that
        ends it), then hand back what was found and the frontier."""
        it = self.item
        limits = Limits(max_steps=it.max_steps, detect_races=it.detect_races,
                        stop_on_first=it.stop_on_first)
        col = _ChunkCollector(self.name, limits, stop, it.budget_s, it.budget_executions,
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


def _random_name(depth: int | None) -> str:
    return "random" if depth is None else f"pct(d={depth})"


def _run_random(factory, item: RandomItem, stop) -> PartResult:
    limits = Limits(max_steps=item.max_steps, detect_races=item.detect_races,
                    stop_on_first=item.stop_on_first, time_limit=item.budget_s)
    col = _ChunkCollector(_random_name(item.depth), limits, stop)
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


# -- backends ---------------------------------------------------------------------------

class Backend(Protocol):
    """Runs work items somewhere.  ``submit`` returns a handle; ``wait`` returns the
    handles among those given that have finished (waiting at most ``timeout`` s);
    ``result`` gives a finished item's ``PartResult`` (or raises what the worker raised);
    ``stop`` asks running items to end their slice now.  A backend may also have
    ``hungry(flag)``: the coordinator tells it whether workers wait for work, and its
    running DPOR items then end their slices (past ``budget_s``) only when they do."""
    slots: int

    def submit(self, item) -> Any: ...
    def wait(self, handles: list, timeout: float | None) -> list: ...
    def result(self, handle) -> PartResult: ...
    def stop(self, handles: list) -> None: ...


# -- the coordinator: DPOR --------------------------------------------------------------

class _Node:
    """A node of the search tree that the coordinator owns: the first item's root, or a
    node of a worker's path when it handed back its frontier.  ``done``: the tasks whose
    subtrees have been handed out here (explored, being explored, or waiting in the
    queue); ``wut``: the wakeup tree of the branches not handed out yet."""

    __slots__ = ("parent", "depth", "step", "okey", "nbranch", "sleep", "enabled",
                 "pending", "nkeys", "done", "wut")

    def __init__(self, parent, step, okey: tuple):
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.step = step                  # (task, choices) from the parent to here
        self.okey = okey                  # where it sits in depth-first order
        self.nbranch = 0                  # its branches so far (their order keys)
        self.sleep: dict = {}
        self.enabled: set | None = None   # unknown until a worker reports the node
        self.pending: dict = {}
        self.nkeys = 0
        self.done: dict = {}
        self.wut: list = []

    def fill(self, info: dict) -> None:
        self.sleep = info["sleep"]
        self.enabled = set(info["enabled"])
        self.pending = info["pending"]
        self.nkeys = info["nkeys"]

    def steps(self) -> list:
        out = []
        n = self
        while n.step is not None:
            out.append(n.step)
            n = n.parent
        out.reverse()
        return out

    def up(self, depth: int) -> _Node:
        n = self
        while n.depth > depth:
            n = n.parent
        return n


@dataclass
class _Pending:
    """A work item waiting in the queue, in depth-first order (``okey``)."""
    okey: tuple
    node: _Node
    branch: Any                   # None: the first item (a free choice at the root)
    first: bool = True
    sleep: dict | None = None     # None: a branch of node.wut, handed out in turn
    done: dict | None = None
    origin: int = 0               # the item whose result made it (0: none)


class Partitioned:
    """The coordinator of a partitioned DPOR search.

    ``explore(limits)`` runs work items on ``backend`` until the search is done or a limit
    stops it, and returns the merged ``Result``.  ``first`` optionally runs the first slice
    in this process (``first(item) -> PartResult``): a search that ends within it never
    touches the backend and is exactly the sequential search.  ``progress(executions,
    reports)`` is called as results come in.  ``stats`` gets one row per slice: (item id,
    id of the item whose result made it, executions, seconds, prefix length)."""

    def __init__(self, backend: Backend, *, slice_s: float = 1.0,
                 first_slice_s: float = 0.5, first: Callable | None = None,
                 progress: Callable | None = None):
        self.backend = backend
        self.slice_s = slice_s
        self.first_slice_s = first_slice_s
        self.first = first
        self.progress = progress
        self._dp = Dpor()                 # for its wakeup-tree predicates
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._heap: list = []
        self._chunks: list = []           # (order key, PartResult, seconds from start)
        self._nexec = 0
        self._keys: set = set()
        self._dropped = False             # work left out after the first report
        self.stats: list = []

    def _push(self, p: _Pending) -> None:
        heapq.heappush(self._heap, (p.okey, next(self._seq), p))

    def _item(self, p: _Pending, limits: Limits, budget_s, budget_exec) -> WorkItem | None:
        n = p.node
        if p.sleep is None:               # a branch of the node's wakeup tree
            b = p.branch
            name = b.ev.name
            n.wut = [x for x in n.wut if x is not b]
            if name in n.done or (n.enabled is not None and name not in n.enabled):
                return None               # handed out already, or it cannot run here
            sleep, done = n.sleep, dict(n.done)
            n.done[name] = n.pending.get(name) or b.ev.op
        else:
            sleep, done = p.sleep, p.done
        above = []
        a = n.parent
        while a is not None:
            above.append({**a.sleep, **a.done})
            a = a.parent
        above.reverse()
        return WorkItem(next(self._ids), n.steps(), p.branch, p.first, dict(sleep),
                        dict(done), limits.max_steps, limits.detect_races,
                        limits.stop_on_first, budget_s, budget_exec, above)

    # -- what comes back ------------------------------------------------------------------

    def _register(self, p: _Pending, res: PartResult, origin: int) -> None:
        """The item's frontier: new nodes below its root, and the work left at each."""
        infos, next_sub = res.frontier
        r = p.node.depth
        m = infos[-1]["depth"]
        nodes = [p.node]
        for info in infos[1:]:
            k = info["depth"]
            n = _Node(nodes[-1], infos[k - r - 1]["taken"], p.okey + (m - k + 1,))
            n.fill(info)
            t = info["taken"][0]
            n.done = dict(info["done"])
            n.done[t] = info["pending"].get(t)     # being explored, below
            nodes.append(n)
        # depth-first order: what is left deeper comes first, and all of it before the
        # node's later branches (order keys p.okey + (m - k + 1, j))
        for n, info in zip(nodes, infos):
            okey = p.okey + (m - info["depth"] + 1,)
            ctr = itertools.count()
            t, ch = info["taken"]
            sleep, done = info["sleep"], info["done"]      # as when t was taken
            if info["depth"] == m:                         # the next branch to explore
                wut = info["wut"]
                if info["first"] and wut and wut[0].ev.name == t:
                    b = wut[0]
                    b.sub = next_sub
                else:
                    b = _branch(_ev(t, ch, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(okey + (next(ctr),), n, b, info["first"], sleep, done,
                                    origin))
            for alt in reversed(info["choice_todo"]):
                b = _branch(_ev(t, alt, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(okey + (next(ctr),), n, b, False, sleep, done, origin))
            if n is not p.node:           # its other branches are the coordinator's now
                n.wut = [b for b in info["wut"] if b.ev.name not in n.done]
                for b in n.wut:
                    self._push(_Pending(okey + (next(ctr),), n, b, origin=origin))
                n.nbranch = next(ctr)

    def _route(self, n: _Node, w: list, origin: int) -> None:
        """Insert the wakeup sequence ``w`` at node ``n``: dropped if a task explored or
        asleep there starts it (that task's subtree covers it), otherwise into the
        wakeup tree of the branches not handed out yet, as ``Dpor._insert`` does; a new
        branch there is a new work item."""
        dp = self._dp
        for tasks in (n.sleep, n.done):
            for q, qop in tasks.items():
                if qop is not None and dp._weak_initial(q, qop, -1, w, _BIG)[0]:
                    return
        compatible = _dpor._compatible
        branches = n.wut
        while True:
            for b in branches:
                ev = b.ev
                ok, x = dp._weak_initial(ev.name, ev.op, ev.xid, w, ev.nk)
                if ok and x is not None and not compatible(ev.choices, x.choices):
                    ok = False
                if ok:
                    if not b.sub:
                        return            # a leaf: whatever follows it will cover w
                    if x is not None:
                        w.remove(x)
                        if not w:
                            return
                    branches = b.sub
                    break
            else:
                chain: list = []
                for e in reversed(w):
                    chain = [_branch(_ev(e.name, e.choices, e.op, e.xid, n.nkeys), chain)]
                branches.append(chain[0])
                if branches is n.wut:
                    self._push(_Pending(n.okey + (n.nbranch,), n, chain[0], origin=origin))
                    n.nbranch += 1
                return

    # -- the loop -------------------------------------------------------------------------

    def explore(self, limits: Limits) -> Result:
        t0 = time.perf_counter()
        deadline = None if limits.time_limit is None else t0 + limits.time_limit
        budget = limits.max_executions
        root = _Node(None, None, ())
        self._push(_Pending((root.nbranch,), root, None, True, {}, {}))
        root.nbranch += 1
        inflight: dict = {}
        best = None                     # order key of the first reporting chunk
        limited = interrupted = False
        backend = self.backend
        hungry = getattr(backend, "hungry", None)
        first = self.first
        try:
            while self._heap or inflight:
                if deadline is not None and time.perf_counter() >= deadline:
                    limited = True
                # a few more items than workers: one that finishes its slice takes the
                # next at once, without waiting for this loop
                depth = backend.slots + max(1, backend.slots // 4)
                while self._heap and len(inflight) < depth and \
                        not limited and not (budget is not None and budget <= 0):
                    okey, _, p = heapq.heappop(self._heap)
                    if best is not None and okey > best:
                        self._dropped = True      # after the first report: not explored
                        continue
                    starving = len(self._heap) + len(inflight) < 2 * backend.slots
                    sl = self.first_slice_s if first is not None else \
                        (self.slice_s / 4 if starving else self.slice_s)
                    if deadline is not None:
                        sl = max(0.01, min(sl, deadline - time.perf_counter()))
                    cap = None
                    if budget is not None:
                        free = max(1, backend.slots - len(inflight))
                        cap = max(1, -(-budget // free))
                        budget -= cap
                    item = self._item(p, limits, sl, cap)
                    if item is None:
                        if budget is not None:
                            budget += cap
                        continue
                    if first is not None:
                        # the first slice runs here: a small search ends in it.  Its
                        # result comes back as a worker's would (its wakeup trees hold
                        # the model's ops)
                        res = pickle.loads(pickle.dumps(first(item)))
                        first = None
                        inflight[None] = (p, item, None)
                        best, budget = self._absorb(None, inflight, res, best, budget,
                                                    limits, t0)
                        if res.interrupted:
                            raise KeyboardInterrupt
                        continue
                    inflight[backend.submit(item)] = (p, item, cap)
                if budget is not None and budget <= 0 and not inflight:
                    limited = limited or bool(self._heap)
                    break
                if not inflight:
                    if limited:
                        break
                    continue
                if hungry is not None:    # whether running items should split now
                    hungry(best is not None or limited or
                           (not self._heap and len(inflight) <= backend.slots))
                for hnd in backend.wait(list(inflight), 0.5):
                    res = backend.result(hnd)
                    best, budget = self._absorb(hnd, inflight, res, best, budget, limits,
                                                t0)
                    if res.interrupted:
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            backend.stop(list(inflight))
        if self._heap and best is None:
            limited = True
        return self._merge(best, t0, complete=not (limited or interrupted or inflight),
                           interrupted=interrupted)

    def _absorb(self, hnd, inflight, res: PartResult, best, budget, limits, t0):
        p, item, cap = inflight.pop(hnd)
        if budget is not None and cap is not None:
            budget += cap - res.executions
        self.stats.append((item.id, p.origin, res.executions, res.elapsed_s,
                           len(item.prefix)))
        if p.branch is None and res.root is not None:     # the first item
            p.node.fill(res.root)
            t = res.root["taken"][0]
            p.node.done[t] = res.root["pending"].get(t)
        if best is not None and p.okey > best:
            if res.frontier is not None:
                self._dropped = True      # after the first report: not explored
        else:
            self._chunks.append((p.okey + (0,), res, time.perf_counter() - t0))
            self._nexec += res.executions
            for _, rep in res.reports:
                self._keys.add(rep.key())
            if res.reports and limits.stop_on_first:
                best = p.okey + (0,)
            if res.frontier is not None and not res.interrupted:
                if limits.stop_on_first and res.reports:
                    self._dropped = True  # the rest comes after the report
                else:
                    self._register(p, res, item.id)
            for depth, w in res.forwarded:
                self._route(p.node.up(depth), [_WEv(*e) for e in w], item.id)
        if self.progress is not None:
            self.progress(self._nexec, len(self._keys))
        return best, budget

    def _merge(self, best, t0: float, complete: bool, interrupted: bool) -> Result:
        res = Result("dpor")
        chunks = sorted(self._chunks, key=lambda c: c[0])
        if best is not None:
            chunks = [c for c in chunks if c[0] <= best]
        fps: set = set()
        keys: set = set()
        for _okey, part, at in chunks:
            _fold(res, part, fps, keys, at)
        res.classes = len(fps)
        res.complete = complete and not self._dropped
        res.interrupted = interrupted
        res.elapsed_s = time.perf_counter() - t0
        n = len(self.stats)
        res.note = f"partitioned: {n} work item{'s' if n != 1 else ''}"
        return res


# -- the coordinator: random walks and PCT ----------------------------------------------

def explore_random(backend: Backend, runs: int, seed: int, limits: Limits, *,
                   depth: int | None = None, chunk: int | None = None,
                   progress: Callable | None = None) -> Result:
    """``RandomWalk(runs, seed)`` (or ``Pct(runs, depth, seed)``) split into ranges of
    runs; the merged result is the sequential one (the first report in run order wins
    under ``stop_on_first``)."""
    t0 = time.perf_counter()
    if limits.max_executions is not None:
        runs = min(runs, limits.max_executions)
    if chunk is None:
        chunk = max(1, -(-runs // (4 * max(1, backend.slots))))
    starts = list(range(0, runs, chunk))
    deadline = None if limits.time_limit is None else t0 + limits.time_limit
    todo = [RandomItem(i, s, min(chunk, runs - s), seed, limits.max_steps,
                       limits.detect_races, limits.stop_on_first, depth=depth)
            for i, s in enumerate(starts)]
    todo.reverse()
    inflight: dict = {}
    parts: dict[int, PartResult] = {}
    best = None
    limited = interrupted = False
    nexec = 0
    keys: set = set()
    try:
        while todo or inflight:
            if deadline is not None and time.perf_counter() >= deadline:
                limited = True
            while todo and len(inflight) < max(1, backend.slots) and not limited:
                it = todo.pop()
                if best is not None and it.start > best:
                    continue
                if deadline is not None:
                    it.budget_s = max(0.01, deadline - time.perf_counter())
                inflight[backend.submit(it)] = it
            if not inflight:
                break
            for h in backend.wait(list(inflight), 0.5):
                it = inflight.pop(h)
                part = backend.result(h)
                parts[it.start] = part
                nexec += part.executions
                keys.update(r.key() for _, r in part.reports)
                if progress is not None:
                    progress(nexec, len(keys))
                if part.interrupted:
                    raise KeyboardInterrupt
                if part.reports and limits.stop_on_first and (best is None or
                                                              it.start < best):
                    best = it.start
    except KeyboardInterrupt:
        interrupted = True
        backend.stop(list(inflight))
    res = Result(_random_name(depth))
    fps: set = set()
    seen: set = set()
    for start in sorted(parts):
        if best is not None and start > best:
            break
        part = parts[start]
        _fold(res, part, fps, seen, time.perf_counter() - t0)
        if not part.finished:
            break                       # a gap: later ranges would not be sequential
    res.classes = len(fps)
    res.complete = False
    res.interrupted = interrupted
    res.elapsed_s = time.perf_counter() - t0
    return res


__all__ = ["WorkItem", "RandomItem", "PartResult", "PartDpor", "Partitioned", "Backend",
           "OpStub", "run_item", "explore_random"]
