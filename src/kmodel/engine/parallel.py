"""Partitioned exploration: one search split into work items that run anywhere.

The engine's part of scaling out.  It knows nothing of processes, Ray or Linux: a
*backend* (``kmodel.parallel``) runs work items somewhere and hands back their results;
this module says what a work item is, how a worker explores one, and how a coordinator
hands them out and merges what comes back.

DPOR (``Dpor``, optimal DPOR with wakeup trees).  A work item is a subtree of the search
tree: the schedule prefix that reaches its root state, the root's sleep set and the tasks
already explored there (``done``), and the branch to take at the root (a task, its choice
values and the wakeup subtree to follow below it).  A worker explores the subtree with
``PartDpor``, a ``Dpor`` that replays the prefix, never backtracks above its root, and
runs for a time slice.  When the slice ends it hands back its *frontier*: every node of
its current path with the branches still to explore there, which the coordinator turns
into new work items (that is how the work spreads: whichever worker is idle takes the
next item from one queue).  A race that a worker's execution finds with an event *above*
its root is a wakeup sequence for a node the worker does not own: it is sent back, and the
coordinator inserts it into that node's wakeup tree as the sequential search would, which
yields a new work item when it adds a branch.

What is identical to the sequential run, and what is not.  Every Mazurkiewicz class the
sequential search explores is explored (the same *set* of classes, hence the same class
count and the same set of report keys, and the same verdict), and when the partitioned
search finds no race across work items the executions are the sequential ones.  They are
not identical in general: sibling subtrees run at the same time, so a wakeup sequence that
the sequential search would have inserted into a sibling's wakeup tree before exploring it
may reach it after it started; it is then explored as an extra work item, and a branch
still being explored elsewhere already counts as explored in its later siblings' sleep
sets.  Both keep the search sound (a class may be explored twice, none is missed); the
execution count may exceed the sequential one and ``sleep_blocked`` may differ.  Classes are
counted by a fingerprint that does not depend on the process (``fingerprint``), so the
union over workers counts each class once.  Results are merged in the order of the
sequential depth-first search, so reports come first found first as sequentially, and
``stop_on_first`` keeps the first report in that order (items after it are dropped).

Random walks split by run index: run ``i`` uses seed ``seed + i`` wherever it runs, so the
merged result is the sequential one.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .execution import Execution, ModelError
from .explore import Collector, Limits, Result, run_execution
from .ops import CONFLICT, Op
from .strategies import dpor as _dpor
from .strategies.dpor import Dpor
from .strategies.random import RandomWalk

_Branch = _dpor._Branch
_Ev = _dpor._Ev
_WEv = _dpor._WEv
_BIG = 1 << 60          # "every key comparable": ops pending on the current path


def _new(cls, **fields):
    """An instance of one of Dpor's slotted records, by field name (so that a field
    added there does not break this module: it is None here)."""
    obj = cls.__new__(cls)
    for name in cls.__slots__:
        setattr(obj, name, fields.get(name))
    return obj


def _ev(name, choices, op, xid, nk):
    return _new(_Ev, name=name, choices=choices, op=op, xid=xid, nk=nk)


def _branch(ev, sub: list):
    return _new(_Branch, ev=ev, sub=sub)


# -- fingerprints ---------------------------------------------------------------------

_SID: dict = {}


def _sid(name: str, label: str) -> int:
    k = (name, label)
    v = _SID.get(k)
    if v is None:
        d = hashlib.blake2b(f"{name}\0{label}".encode(), digest_size=8).digest()
        v = _SID[k] = int.from_bytes(d, "little", signed=True)
    return v


def fingerprint(ex: Execution) -> int:
    """The execution's class (``class_key()``) as a number that is the same in every
    process: ``class_hash()`` hashes strings, which Python salts per process.  Each event
    is its task, its op's label and its vector clock; the sum does not depend on the order
    of independent events.  Ints and tuples of ints hash the same everywhere."""
    names = [t.name for t in ex.tasks]
    sid = _SID
    h = 0
    for t, op, vc in zip(ex.ev_task, ex.ev_op, ex.ev_vc):
        k = (names[t], op.label)
        s = sid.get(k)
        if s is None:
            s = _sid(*k)
        h += hash((s, vc))
    return h & 0xFFFFFFFFFFFFFFFF


# -- picklable stand-ins ----------------------------------------------------------------

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
    """Copies DPOR's structures with every op replaced by an ``OpStub``, keeping shared
    lists shared (a branch's subtree is the wakeup tree of the node below)."""

    def __init__(self, ops: dict | None = None):
        self.ops: dict = {} if ops is None else ops
        self.lists: dict[int, list] = {}
        self._keep: list = []

    def op(self, op):
        if op is None or type(op) is OpStub:
            return op
        s = self.ops.get(op)             # by identity: ops do not define equality
        if s is None:
            s = self.ops[op] = OpStub(op.kind, op.label, op.key, op.plain)
        return s

    def ops_dict(self, d: dict) -> dict:
        return {k: self.op(v) for k, v in d.items()}

    def wut(self, lst: list) -> list:
        out = self.lists.get(id(lst))
        if out is not None:
            return out
        out = self.lists[id(lst)] = []
        self._keep.append(lst)
        for b in lst:
            ev = copy.copy(b.ev)
            ev.op = self.op(ev.op)
            nb = copy.copy(b)
            nb.ev = ev
            nb.sub = self.wut(b.sub)
            out.append(nb)
        return out

    def wevs(self, w: list) -> list:
        out = []
        for e in w:
            c = copy.copy(e)
            c.op = self.op(e.op)
            c.vc = tuple(e.vc)
            out.append(c)
        return out


def _signature(w: list) -> tuple:
    """A wakeup sequence without the execution it was seen in: the same race found again
    in the next execution has the same signature (and is not sent twice)."""
    return tuple((e.name, e.op.kind, e.op.key, e.op.label, e.choices, tuple(e.vc), e.local)
                 for e in w)


# -- work items and their results -------------------------------------------------------

@dataclass
class WorkItem:
    """A subtree of the DPOR search: reach the root by ``prefix`` (task, choice values per
    step), then explore ``branch`` there (None: choose freely, only for the initial item)
    with ``sleep`` and ``done`` as the root's sleep set and explored tasks."""
    id: int
    prefix: list
    branch: Any = None
    first: bool = True            # False: a choice alternative of a step already taken
    sleep: dict = field(default_factory=dict)
    done: dict = field(default_factory=dict)
    bound: int | None = None
    max_steps: int = 5000
    detect_races: bool = True
    stop_on_first: bool = False
    budget_s: float | None = None         # the time slice; None: to the end
    budget_executions: int | None = None


@dataclass
class RandomItem:
    """Runs ``start .. start + runs - 1`` of a random exploration (run i: seed + i)."""
    id: int
    start: int
    runs: int
    seed: int
    max_steps: int = 5000
    detect_races: bool = True
    stop_on_first: bool = False
    budget_s: float | None = None


@dataclass
class PartResult:
    """What one work item (one time slice of it) found."""
    item_id: int
    executions: int = 0
    counters: dict = field(default_factory=dict)      # Result's other counts, by name
    fingerprints: set = field(default_factory=set)
    metrics: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)       # [(execution index, Report)]
    pruned: bool = False          # bounded search left a branch over the bound
    finished: bool = False        # the whole subtree (or run range) is explored
    stopped: bool = False         # stop_on_first or a stop request ended it early
    interrupted: bool = False
    root: dict | None = None      # the root node as the worker saw it (see frontier())
    frontier: Any = None          # (node infos root..m, next wakeup subtree) if not finished
    forwarded: list = field(default_factory=list)     # [(depth, wakeup sequence)]
    elapsed_s: float = 0.0


def _counter_names() -> tuple:
    """Result's counts of executions that are not a class (sleep_blocked, bound_blocked,
    ...): every plain int field but executions and classes."""
    return tuple(f.name for f in dataclasses.fields(Result)
                 if f.type in ("int", int) and f.name not in ("executions", "classes"))


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
    """A Collector that also keeps process-independent class fingerprints and the
    execution index of each new report.  An execution is a class exactly when the
    Collector counted it as one: when none of its other counts (sleep-blocked, ...)
    moved."""

    def __init__(self, strategy: str, limits: Limits, stop: Callable | None = None,
                 budget_s: float | None = None, budget_executions: int | None = None,
                 void: Callable[[], bool] | None = None):
        super().__init__(strategy, limits)
        self.fps: set[int] = set()
        self.report_at: list = []
        self.stop = stop
        self.stopped = False            # a limit, a report (stop_on_first) or stop()
        self.sliced = False             # the time slice or execution budget ran out
        self.end = None if budget_s is None else time.perf_counter() + budget_s
        self.cap = budget_executions
        self.void = void
        self._names = _counter_names()

    def _counts(self) -> tuple:
        r = self.result
        return tuple(getattr(r, n) for n in self._names)

    def add(self, ex: Execution) -> bool:
        if self.void is not None and self.void():
            return False                # the item had nothing to explore
        n0 = len(self.result.reports)
        before = self._counts()
        go = super().add(ex)
        if self._counts() == before:
            self.fps.add(fingerprint(ex))
        reps = self.result.reports
        if len(reps) > n0:
            at = self.result.executions - 1
            self.report_at.extend((at, r) for r in reps[n0:])
        if go and self.stop is not None and self.stop():
            go = False
        if not go:
            self.stopped = True
        elif (self.end is not None and time.perf_counter() >= self.end) or \
                (self.cap is not None and self.result.executions >= self.cap):
            self.sliced = True
            go = False
        return go

    def part(self, item_id: int) -> PartResult:
        r = self.result
        return PartResult(item_id, executions=r.executions,
                          counters={n: getattr(r, n) for n in self._names},
                          fingerprints=self.fps, metrics=r.metrics, reports=self.report_at)


# -- the worker -------------------------------------------------------------------------

class PartDpor(Dpor):
    """``Dpor`` restricted to one work item: it replays the item's prefix, explores the
    given branch at the root (and its choice alternatives), and never backtracks above
    the root.  Wakeup sequences for nodes above the root, and new branches at the root
    itself (the root's other branches belong to the coordinator), are collected in
    ``forwarded`` instead of being inserted."""

    def __init__(self, item: WorkItem):
        super().__init__(preemption_bound=item.bound)
        self.item = item
        self.root = len(item.prefix)
        self.xid = item.id << 32          # execution ids unique over all items
        self.forwarded: list = []
        self.void = False
        self.root_info: dict | None = None
        self._depth_of: dict[int, int] = {}
        self._sent: set = set()           # (depth, signature) of what was forwarded
        self._stubs = _Stubs()

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
            got = super().pick(ex, enabled)
            node = path[i]
            self._depth_of[id(node)] = i
            if got is None or node.taken is None or node.taken[0] != name:
                raise ModelError(f"work item prefix diverged at step {i}: {name} cannot "
                                 "run; the model is not deterministic")
            return got
        # the root
        self.child_sleep = dict(it.sleep)
        b = it.branch
        if b is None:
            self.next_wut = []
            got = super().pick(ex, enabled)
            if len(path) > i:
                self._depth_of[id(path[i])] = i
                path[i].done = dict(it.done)
                if got is not None:
                    self.root_info = self._info(path[i], i)
            return got
        name = b.ev.name
        if name in it.done or all(t.name != name for t in enabled):
            self.void = True                  # nothing to explore here
            return None
        self.next_wut = [b]
        got = super().pick(ex, enabled)
        node = path[i]
        self._depth_of[id(node)] = i
        node.done = dict(it.done)
        if got is None or node.taken is None or node.taken[0] != name:
            node.taken = None                 # over the preemption bound
            self.void = True
            return None
        if not it.first:
            node.first = False
            self.next_wut = []
        self.root_info = self._info(node, i)
        return got

    def after_step(self, ex: Execution, task, used: tuple) -> None:
        super().after_step(ex, task, used)
        i = ex.nsteps - 1
        if i < self.root:
            self.path[i].choice_todo.clear()  # alternatives above the root: not ours

    # -- wakeup trees above the root ---------------------------------------------------

    def _insert(self, node, w) -> bool:
        d = self._depth_of.get(id(node))
        if d is None:
            return super()._insert(node, w)
        orig = list(w)
        if d == self.root:
            n = len(node.wut)
            if not super()._insert(node, w):
                return False
            if len(node.wut) == n:
                return True                   # it went below the root's branch: ours
            node.wut.pop()                    # a new branch at the root: a sibling
        key = (d, _signature(orig))
        if key not in self._sent:
            self._sent.add(key)
            self.forwarded.append((d, self._stubs.wevs(orig)))
        return True

    # -- the frontier ------------------------------------------------------------------

    def frontier(self):
        """The nodes from the root down to where the next execution would branch off,
        with what is left to explore at each: ``([info per node], next wakeup subtree)``."""
        st = _Stubs(self._stubs.ops)     # a fresh copy of the lists, shared op stubs
        infos = [self._info(self.path[k], k, st) for k in range(self.root, len(self.path))]
        return infos, st.wut(self.next_wut)

    def _info(self, n, k: int, st: _Stubs | None = None) -> dict:
        """One node as the coordinator needs it (``st``: with its wakeup tree)."""
        ops = st or self._stubs
        return {"depth": k, "taken": (n.taken[0], tuple(n.taken[1])), "first": n.first,
                "choice_todo": [tuple(c) for c in n.choice_todo],
                "enabled": list(n.enabled), "pending": ops.ops_dict(n.pending),
                "sleep": ops.ops_dict(n.sleep), "done": ops.ops_dict(n.done),
                "wut": st.wut(n.wut) if st is not None else None, "prev": n.prev,
                "preemptions": n.preemptions, "nkeys": n.nkeys}

    # -- one slice ---------------------------------------------------------------------

    def run(self, factory, stop: Callable[[], bool] | None = None) -> PartResult:
        """Explore the item for one time slice (``Dpor.explore`` with a collector that
        ends it), then hand back what was found and the frontier."""
        it = self.item
        limits = Limits(max_steps=it.max_steps, detect_races=it.detect_races,
                        stop_on_first=it.stop_on_first)
        col = _ChunkCollector(self.name, limits, stop, it.budget_s, it.budget_executions,
                              void=lambda: self.void)
        t0 = time.perf_counter()
        out = self.explore(factory, limits, col)
        res = col.part(it.id)
        res.pruned = self.pruned_by_bound
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


def run_item(factory, item, stop: Callable[[], bool] | None = None) -> PartResult:
    """Explore one work item (a ``WorkItem`` or a ``RandomItem``) in this process."""
    if isinstance(item, RandomItem):
        return _run_random(factory, item, stop)
    return PartDpor(item).run(factory, stop)


def _run_random(factory, item: RandomItem, stop) -> PartResult:
    limits = Limits(max_steps=item.max_steps, detect_races=item.detect_races,
                    stop_on_first=item.stop_on_first, time_limit=item.budget_s)
    col = _ChunkCollector("random", limits, stop)
    # RandomWalk gives run i the seed seed + i: runs start.. are RandomWalk(seed + start)
    res = RandomWalk(item.runs, item.seed + item.start).explore(factory, limits, col)
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
    ``stop`` asks running items to end their slice now."""
    slots: int

    def submit(self, item) -> Any: ...
    def wait(self, handles: list, timeout: float | None) -> list: ...
    def result(self, handle) -> PartResult: ...
    def stop(self, handles: list) -> None: ...


# -- the coordinator: DPOR --------------------------------------------------------------

class _TNode:
    """A node of the search tree the coordinator owns: a node of some worker's path when
    it handed back its frontier.  Its wakeup tree is where sequences from below land."""

    __slots__ = ("parent", "depth", "step", "sleep", "enabled", "pending", "nkeys", "prev",
                 "preemptions", "wut", "routing_done", "dispatch_done", "dispatched",
                 "chain", "okey", "nbranch", "done_of", "key_of")

    def __init__(self, parent, step, okey: tuple, chain: list):
        self.parent = parent
        self.depth = 0 if parent is None else parent.depth + 1
        self.step = step                  # (task, choices) from the parent to here
        self.sleep: dict = {}
        self.enabled: set | None = None   # unknown until a worker reports the node
        self.pending: dict = {}
        self.nkeys = 0
        self.prev = None
        self.preemptions = 0
        self.wut: list = []
        self.routing_done: dict = {}      # tasks whose subtrees are explored completely
        self.dispatch_done: dict = {}     # tasks explored or being explored here
        self.dispatched: set = set()
        self.chain = chain                # (node, task) pairs above this node
        self.okey = okey                  # where it sits in the sequential order
        self.nbranch = 0
        self.done_of: dict = {}           # id(branch) -> the done set it was sent with
        self.key_of: dict = {}            # id(branch) -> its item's order key

    def steps(self) -> list:
        out = []
        n = self
        while isinstance(n, _TNode) and n.step is not None:
            out.append(n.step)
            n = n.parent
        out.reverse()
        if isinstance(n, _VHandle):
            return n.steps() + out
        return out


class _VHandle:
    """A node inside a wakeup subtree that a worker is exploring (the coordinator has no
    node for it): the coordinator node ``x`` and the branches followed from it."""

    __slots__ = ("x", "trail", "depth")

    def __init__(self, x: _TNode, trail: tuple):
        self.x = x
        self.trail = trail
        self.depth = x.depth + len(trail)

    @property
    def parent(self):
        return self.x if len(self.trail) == 1 else _VHandle(self.x, self.trail[:-1])

    def steps(self) -> list:
        return self.x.steps() + [(b.ev.name, tuple(b.ev.choices or ())) for b in self.trail]


@dataclass
class _Pending:
    okey: tuple
    kind: str                     # "free", "wut" (done set at dispatch) or "fixed"
    handle: Any
    branch: Any
    first: bool
    chain: list                   # (node, task) pairs it is under (for "explored")
    sleep: dict | None = None
    done: dict | None = None
    origin: int = 0               # the item whose result made it (0: none)


def _maybe_dependent(a, b, nkeys: int) -> bool:
    """Whether ops a and b might conflict, where an object key at or above ``nkeys`` may
    name a different object in another execution (so it is assumed to be the same)."""
    if a.key < 0 or b.key < 0 or not CONFLICT[a.kind][b.kind]:
        return False
    return a.key == b.key or a.key >= nkeys or b.key >= nkeys


class Partitioned:
    """The coordinator of a partitioned DPOR search (or, with ``runs``, of a random one).

    ``explore(limits)`` runs work items on ``backend`` until the search is done or a limit
    stops it, and returns the merged ``Result``.  ``first`` optionally runs the first slice
    in this process (``first(item) -> PartResult``): a search that ends within it never
    touches the backend and is exactly the sequential search.  ``progress(executions,
    reports)`` is called as results come in."""

    SUPP = 10 ** 6

    def __init__(self, backend: Backend, bound: int | None = None, *,
                 slice_s: float = 1.0, first_slice_s: float = 0.5,
                 first: Callable | None = None, progress: Callable | None = None):
        self.backend = backend
        self.bound = bound
        self.slice_s = slice_s
        self.first_slice_s = first_slice_s
        self.first = first
        self.progress = progress
        self.name = "dpor" if bound is None else f"bounded(k={bound})"
        self._dp = Dpor(preemption_bound=bound)       # for its wakeup-tree predicates
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._heap: list = []
        self._count: dict = {}
        self._lists: dict[int, _TNode] = {}
        self._chunks: list = []
        self._nexec = 0
        self._keys: set = set()
        self._dropped = False           # work left out after the first report
        self.pruned = False
        self.stats: list = []           # per item slice: (okey, executions, seconds, depth)

    # -- bookkeeping of "explored" ------------------------------------------------------

    def _push(self, p: _Pending) -> None:
        for pair in p.chain:
            self._count[pair] = self._count.get(pair, 0) + 1
        heapq.heappush(self._heap, (p.okey, next(self._seq), p))

    def _release(self, chain: list) -> None:
        for pair in chain:
            c = self._count[pair] - 1
            if c:
                self._count[pair] = c
                continue
            del self._count[pair]
            x, name = pair
            x.routing_done[name] = x.pending.get(name) or x.dispatch_done.get(name)
            x.wut[:] = [b for b in x.wut if b.ev.name != name]

    # -- dispatch -------------------------------------------------------------------------

    def _item(self, p: _Pending, limits: Limits, budget_s, budget_exec) -> WorkItem | None:
        h = p.handle
        if p.kind == "wut":
            name = p.branch.ev.name
            if name in h.dispatched or (h.enabled is not None and name not in h.enabled):
                return None
            if self.bound is not None and h.enabled is not None:
                pre = int(h.prev is not None and name != h.prev and h.prev in h.enabled)
                if h.preemptions + pre > self.bound:
                    self.pruned = True
                    return None
            done = dict(h.dispatch_done)
            h.dispatched.add(name)
            h.dispatch_done[name] = h.pending.get(name) or p.branch.ev.op
            h.done_of[id(p.branch)] = done
            h.key_of[id(p.branch)] = p.okey
            sleep = h.sleep
        else:
            done = p.done or {}
            sleep = p.sleep or {}
        return WorkItem(next(self._ids), h.steps(), p.branch, p.first, dict(sleep),
                        dict(done), self.bound, limits.max_steps, limits.detect_races,
                        limits.stop_on_first, budget_s, budget_exec)

    # -- what comes back ------------------------------------------------------------------

    def _handle_at(self, h, depth: int):
        while h.depth > depth:
            h = h.parent
        return h

    def _register(self, p: _Pending, res: PartResult, origin: int) -> None:
        infos, next_sub = res.frontier
        h = p.handle
        r = h.depth
        m = infos[-1]["depth"]
        info_r = infos[0]
        if p.branch is not None and info_r["wut"] and \
                info_r["wut"][0].ev.name == p.branch.ev.name:
            p.branch.sub = info_r["wut"][0].sub       # the freshest wakeup subtree
        t_r = info_r["taken"][0]
        above = p.chain[:-1] if isinstance(h, _TNode) else list(p.chain)
        nodes = [h]
        chains = [above]
        chain = above + ([(h, t_r)] if isinstance(h, _TNode) else [])
        for info in infos[1:]:
            k = info["depth"]
            parent = nodes[-1]
            step = infos[k - r - 1]["taken"]
            n = _TNode(parent, step, p.okey + (m - k + 1,), list(chain))
            self._fill(n, info)
            n.wut = info["wut"]
            self._lists[id(n.wut)] = n
            t = info["taken"][0]
            n.dispatched = {t}
            n.dispatch_done = dict(info["done"])
            n.dispatch_done[t] = info["pending"].get(t)
            n.routing_done = dict(info["done"])
            nodes.append(n)
            chains.append(list(chain))
            chain = chain + [(n, t)]
        for j, info in enumerate(infos):
            node = nodes[j]
            k = info["depth"]
            base = p.okey + (m - k + 1,)
            ctr = itertools.count()
            t, ch = info["taken"]
            own = chains[j] + ([(node, t)] if isinstance(node, _TNode) else [])
            fixed = dict(info["done"])
            if k == m:
                if info["first"] and info["wut"] and info["wut"][0].ev.name == t:
                    b = info["wut"][0]
                    b.sub = next_sub
                    if isinstance(node, _TNode):
                        node.done_of[id(b)] = fixed
                        node.key_of[id(b)] = base + (0,)
                else:
                    b = _branch(_ev(t, ch, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(base + (next(ctr),), "fixed", node, b, info["first"],
                                    own, info["sleep"], fixed, origin))
            for alt in reversed(info["choice_todo"]):
                b = _branch(_ev(t, alt, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(base + (next(ctr),), "fixed", node, b, False, own,
                                    info["sleep"], fixed, origin))
            for b in info["wut"]:
                if b.ev.name == t:
                    continue
                pair = chains[j] + ([(node, b.ev.name)] if isinstance(node, _TNode) else [])
                if isinstance(node, _TNode):
                    self._push(_Pending(base + (next(ctr),), "wut", node, b, True, pair,
                                        origin=origin))
                else:
                    done = dict(fixed)
                    done[t] = info["pending"].get(t)
                    self._push(_Pending(base + (next(ctr),), "fixed", node, b, True, pair,
                                        info["sleep"], done, origin))
            if isinstance(node, _TNode) and node is not h:
                node.nbranch = next(ctr)

    def _fill(self, n: _TNode, info: dict) -> None:
        n.sleep = info["sleep"]
        n.enabled = set(info["enabled"])
        n.pending = info["pending"]
        n.nkeys = info["nkeys"]
        n.prev = info["prev"]
        n.preemptions = info["preemptions"]

    # -- routing a wakeup sequence (mirrors Dpor._insert) ---------------------------------

    def _vsleep(self, x: _TNode, trail: list) -> dict:
        """The sleep set on arrival at the node below ``trail``: a subset of what the
        sequential search would have there.  It starts from ``x``'s sleep set and the
        tasks explored at ``x`` before the first branch of the trail; the siblings
        explored before each later branch are left out (the coordinator's copy of that
        wakeup subtree may hold branches the worker found it could not take), and so is
        a task whose op might conflict with a step of the trail (object keys first seen
        below ``x`` are not comparable between executions)."""
        nk = x.nkeys
        sleep = {**x.sleep, **x.done_of.get(id(trail[0]), x.dispatch_done)}
        for b in trail:
            name, op = b.ev.name, b.ev.op
            sleep = {q: o for q, o in sleep.items() if o is not None and q != name and
                     (op is None or not _maybe_dependent(o, op, nk))}
        return sleep

    def _route(self, h, w: list) -> None:
        dp = self._dp
        if isinstance(h, _TNode):
            x, trail = h, []
            sleep, done, branches = h.sleep, h.routing_done, h.wut
        else:
            x, trail = h.x, list(h.trail)
            sleep = self._vsleep(x, trail)
            done, branches = {}, trail[-1].sub
            owner = self._lists.get(id(branches))
            if owner is not None:
                x, trail = owner, []
        nk = x.nkeys
        for sl in (sleep, done):
            for q, qop in sl.items():
                if qop is not None and dp._weak_initial(q, qop, -1, w, _BIG)[0]:
                    return
        compatible = _dpor._compatible
        while True:
            for b in branches:
                ev = b.ev
                ok, xe = dp._weak_initial(ev.name, ev.op, ev.xid, w, ev.nk)
                if ok and xe is not None and not compatible(ev.choices, xe.choices):
                    ok = False
                if ok:
                    if not b.sub:
                        return
                    if xe is not None:
                        w.remove(xe)
                        if not w:
                            return
                    trail.append(b)
                    branches = b.sub
                    owner = self._lists.get(id(branches))
                    if owner is not None:
                        x, trail = owner, []
                    break
            else:
                chain: list = []
                for e in reversed(w):
                    chain = [_branch(_ev(e.name, e.choices, e.op, e.xid, nk), chain)]
                nb = chain[0]
                branches.append(nb)
                self._placed(x, trail, nb)
                return

    def _placed(self, x: _TNode, trail: list, nb) -> None:
        name = nb.ev.name
        if not trail:
            if name in x.dispatched:
                return                  # dropped when that task's subtree is done
            okey = x.okey + (x.nbranch,)
            x.nbranch += 1
            self._push(_Pending(okey, "wut", x, nb, True, x.chain + [(x, name)]))
            return
        b0 = trail[0]
        if b0.ev.name not in x.dispatched:
            return                      # that branch has not been handed out: it carries it
        base = x.key_of.get(id(b0), x.okey + (self.SUPP,))
        okey = base + (self.SUPP + next(self._seq),)
        self._push(_Pending(okey, "fixed", _VHandle(x, tuple(trail)), nb, True,
                            x.chain + [(x, b0.ev.name)], self._vsleep(x, trail), {}))

    # -- the loop -------------------------------------------------------------------------

    def explore(self, limits: Limits) -> Result:
        t0 = time.perf_counter()
        deadline = None if limits.time_limit is None else t0 + limits.time_limit
        budget = limits.max_executions
        root = _TNode(None, None, (0,), [])
        self._push(_Pending((0,), "free", root, None, True, []))
        inflight: dict = {}
        best = None                     # order key of the first reporting chunk
        limited = interrupted = False
        backend = self.backend
        first = self.first
        try:
            while self._heap or inflight:
                now = time.perf_counter()
                if deadline is not None and now >= deadline:
                    limited = True
                # a few more items than workers: one that finishes its slice takes the
                # next at once, without waiting for this loop
                depth = backend.slots + max(1, backend.slots // 4)
                while self._heap and len(inflight) < depth and \
                        not limited and not (budget is not None and budget <= 0):
                    okey, _, p = heapq.heappop(self._heap)
                    if best is not None and okey > best:
                        self._dropped = True      # after the first report: not explored
                        self._release(p.chain)
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
                        self._release(p.chain)
                        continue
                    if first is not None:
                        # the first slice runs here: a small search ends in it
                        res = first(item)
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
        return self._merge(limits, best, t0, complete=not (limited or interrupted or
                                                          self.pruned or inflight),
                           interrupted=interrupted)

    def _absorb(self, hnd, inflight, res: PartResult, best, budget, limits, t0):
        p, item, cap = inflight.pop(hnd)
        if budget is not None and cap is not None:
            budget += cap - res.executions
        self.stats.append((item.id, p.origin, res.executions, res.elapsed_s,
                           len(item.prefix)))
        self.pruned = self.pruned or res.pruned
        late = best is not None and p.okey > best
        if late and res.frontier is not None:
            self._dropped = True
        h = p.handle
        if res.root is not None and isinstance(h, _TNode):
            if h.enabled is None:
                self._fill(h, res.root)
            t = res.root["taken"][0]
            if t not in h.dispatched:             # a free choice at the root
                h.dispatched.add(t)
                h.dispatch_done[t] = res.root["pending"].get(t)
            if p.kind == "free":
                p.chain = [(h, t)]
                self._count[(h, t)] = self._count.get((h, t), 0) + 1
        if not late:
            self._chunks.append((p.okey + (0,), res, time.perf_counter() - t0))
            self._nexec += res.executions
            for _, rep in res.reports:
                self._keys.add(rep.key())
            if res.reports and limits.stop_on_first:
                best = p.okey + (0,)
            if res.frontier is not None and not res.interrupted:
                if limits.stop_on_first and res.reports:
                    self._dropped = True          # the rest comes after the report
                else:
                    self._register(p, res, item.id)
            for depth, w in res.forwarded:
                self._route(self._handle_at(p.handle, depth), list(w))
        self._release(p.chain)
        if self.progress is not None:
            self.progress(self._nexec, len(self._keys))
        return best, budget

    def _merge(self, limits: Limits, best, t0: float, complete: bool,
               interrupted: bool) -> Result:
        res = Result(self.name)
        chunks = sorted(self._chunks, key=lambda c: c[0])
        if best is not None:
            chunks = [c for c in chunks if c[0] <= best]
        fps: set = set()
        keys: set = set()
        for _okey, part, at in chunks:
            base = res.executions
            res.executions += part.executions
            _add_counters(res, part.counters)
            fps |= part.fingerprints
            _merge_metrics(res.metrics, part.metrics)
            for idx, rep in part.reports:
                if rep.key() not in keys:
                    keys.add(rep.key())
                    res.reports.append(rep)
                    if res.first_report_execution is None:
                        res.first_report_execution = base + idx + 1
                        res.first_report_s = at
        res.classes = len(fps)
        res.complete = complete and not self._dropped
        res.interrupted = interrupted
        res.elapsed_s = time.perf_counter() - t0
        n = len(self.stats)
        res.note = f"partitioned: {n} work item{'s' if n != 1 else ''}"
        return res


# -- the coordinator: random walks ----------------------------------------------------

def explore_random(backend: Backend, runs: int, seed: int, limits: Limits, *,
                   chunk: int | None = None, progress: Callable | None = None) -> Result:
    """``RandomWalk(runs, seed)`` split into ranges of runs; the merged result is the
    sequential one (the first report in run order wins under ``stop_on_first``)."""
    t0 = time.perf_counter()
    if limits.max_executions is not None:
        runs = min(runs, limits.max_executions)
    if chunk is None:
        chunk = max(1, -(-runs // (4 * max(1, backend.slots))))
    starts = list(range(0, runs, chunk))
    deadline = None if limits.time_limit is None else t0 + limits.time_limit
    todo = [RandomItem(i, s, min(chunk, runs - s), seed, limits.max_steps,
                       limits.detect_races, limits.stop_on_first) for i, s in
            enumerate(starts)]
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
    res = Result("random")
    fps: set = set()
    seen: set = set()
    for start in sorted(parts):
        if best is not None and start > best:
            break
        part = parts[start]
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
                    res.first_report_s = time.perf_counter() - t0
        if not part.finished:
            break                       # a gap: later ranges would not be sequential
    res.classes = len(fps)
    res.complete = False
    res.interrupted = interrupted
    res.elapsed_s = time.perf_counter() - t0
    return res


__all__ = ["WorkItem", "RandomItem", "PartResult", "PartDpor", "Partitioned", "Backend",
           "OpStub", "fingerprint", "run_item", "explore_random"]
