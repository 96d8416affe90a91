"""The coordinator of a partitioned DPOR search: it owns the top of the search tree, hands
its branches out as work items, turns what comes back into new nodes and items, and
merges the results in depth-first order (see ``partition/__init__.py``)."""

from __future__ import annotations

import heapq
import itertools
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..explore import Limits, Result
from ..strategies.wakeup import Branch, SeqEvent, Step, insert
from .items import PartResult, WorkItem, fold


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


class _Node:
    """A node of the search tree that the coordinator owns: the first item's root, or a
    node of a worker's path when it handed back its frontier.  ``done``: the tasks whose
    subtrees have been handed out here (explored, being explored, or waiting in the
    queue); ``wakeup``: the wakeup tree of the branches not handed out yet."""

    __slots__ = ("parent", "depth", "step", "okey", "nbranch", "sleep", "enabled",
                 "pending", "nkeys", "done", "wakeup")

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
        self.wakeup: list = []

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
    sleep: dict | None = None     # None: a branch of node.wakeup, handed out in turn
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
            name = b.step.task
            n.wakeup = [x for x in n.wakeup if x is not b]
            if name in n.done or (n.enabled is not None and name not in n.enabled):
                return None               # handed out already, or it cannot run here
            sleep, done = n.sleep, dict(n.done)
            n.done[name] = n.pending.get(name) or b.step.op
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
                tree = info["wakeup"]
                if info["first"] and tree and tree[0].step.task == t:
                    b = tree[0]
                    b.children = next_sub
                else:
                    b = Branch(Step(t, ch, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(okey + (next(ctr),), n, b, info["first"], sleep, done,
                                    origin))
            for alt in reversed(info["choice_todo"]):
                b = Branch(Step(t, alt, info["pending"].get(t), -1, info["nkeys"]), [])
                self._push(_Pending(okey + (next(ctr),), n, b, False, sleep, done, origin))
            if n is not p.node:           # its other branches are the coordinator's now
                n.wakeup = [b for b in info["wakeup"] if b.step.task not in n.done]
                for b in n.wakeup:
                    self._push(_Pending(okey + (next(ctr),), n, b, origin=origin))
                n.nbranch = next(ctr)

    def _route(self, n: _Node, seq: list, origin: int) -> None:
        """Insert the wakeup sequence ``seq`` at node ``n`` (``wakeup.insert``): dropped
        if a task explored or asleep there starts it (that task's subtree covers it),
        otherwise into the wakeup tree of the branches not handed out yet; a new branch
        there is a new work item."""
        placed = insert(n.wakeup, seq, n.nkeys, (n.sleep, n.done))
        if placed is not None and placed[0] is n.wakeup:
            self._push(_Pending(n.okey + (n.nbranch,), n, placed[1], origin=origin))
            n.nbranch += 1

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
                self._route(p.node.up(depth), [SeqEvent(*e) for e in w], item.id)
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
            fold(res, part, fps, keys, at)
        res.classes = len(fps)
        res.complete = complete and not self._dropped
        res.interrupted = interrupted
        res.elapsed_s = time.perf_counter() - t0
        n = len(self.stats)
        res.note = f"partitioned: {n} work item{'s' if n != 1 else ''}"
        return res
