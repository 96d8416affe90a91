"""Exhaustive exploration with optimal dynamic partial-order reduction: sleep sets and
wakeup trees (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014 / JACM 2017).

The search is stateless and depth-first: every execution re-runs the program from its
constructor along a prefix of the previous one (the prefix runs bare, see
``Execution.resume_from``).  At each state first reached, every task's next op is checked
against the earlier events of its object: an event ``e`` of another task that conflicts
with it, could be enabled together with it, does not happen-before it, and does not
happen-before another such event, is a race.  Reversing it means running
``v = notdep(e).op`` -- the events after ``e`` that do not happen-after it, then the op --
from the state before ``e``.  ``v`` is inserted into that state's *wakeup tree* unless a
task in the state's sleep set is a weak initial of ``v`` (the reversal is then already
covered) or the tree already holds a sequence that starts it.  The search follows the
wakeup tree's sequences before it chooses freely, and a task whose subtree is done sleeps
in its later siblings until something conflicting with its op runs.  That is what keeps
the search from running into sleep-set-blocked executions, and every complete execution
it runs is in a new Mazurkiewicz class.

The model has blocking ops (a wait that is not enabled); a wakeup sequence whose step
turns out not to be enabled (the op waits for what the raced event does) is dropped where
it fails, and the search goes on from there by free choice -- stopping there instead
loses classes (found by comparing class sets on the model).  Nondeterministic choices
inside a step are explored exhaustively at the node where the step is taken.

``preemption_bound`` turns this into bounded search (CHESS): a branch that switches away
from a task that could still run counts a preemption, and steps over the bound are not
taken.  Bounded search is not complete for the unbounded state space.
"""

from __future__ import annotations

from bisect import bisect_right

from ..execution import Execution, ModelError, Task
from ..explore import Strategy
from ..ops import CLASS, CONFLICT, DEC, LOCAL, NOT_CO_ENABLED, co_enabled, conflict, may_conflict
from .wakeup import Branch, SeqEvent, insert


class _Node:
    __slots__ = ("enabled", "pending", "sleep", "done", "wakeup", "taken", "choice_todo",
                 "first", "prev", "preemptions", "nkeys")

    def __init__(self, enabled, pending, sleep, wakeup, prev, preemptions, nkeys):
        self.enabled: dict = enabled          # task name -> op, the tasks that can run
        self.pending: dict = pending          # task name -> its next op, every live task
        self.sleep: dict = sleep              # sleeping tasks -> their ops, on arrival
        self.done: dict = {}                  # explored here -> op (sleeps in siblings)
        self.wakeup: list[Branch] = wakeup    # wakeup tree: branches still to explore
        self.taken: tuple[str, tuple] | None = None
        self.choice_todo: list[tuple] = []
        self.first = False                    # the taken task's first run at this node
        self.prev: str | None = prev          # the task that ran the step before
        self.preemptions = preemptions        # preemptions on the path up to this node
        self.nkeys = nkeys                    # objects numbered by this state


class Dpor(Strategy):
    name = "dpor"
    exhaustive = True

    def __init__(self, preemption_bound: int | None = None):
        self.bound = preemption_bound
        self.path: list[_Node] = []
        self.replay_len = 0
        self.child_sleep: dict = {}
        self.next_wakeup: list[Branch] = []
        self.pruned_by_bound = False
        self.blocked_outcome = "sleep-blocked"
        self.last: Execution | None = None    # the previous execution: the next resumes it
        self.execution_id = 0
        self.reuse_prefix = True
        self.weak_initials = False        # off: see wakeup.weak_initial

    # -- Strategy: one execution ---------------------------------------------------

    def prefix(self):
        if not self.reuse_prefix or self.last is None or self.replay_len == 0:
            return None
        return self.last, [n.taken for n in self.path[:self.replay_len]]

    def pick(self, ex: Execution, enabled: list[Task]):
        i = ex.nsteps
        path = self.path
        if i < len(path):
            node = path[i]
            name, choices = node.taken
            task = ex.by_name.get(name)
            if task is None or task.done or not task.pending.enabled():
                raise ModelError(f"replay diverged at step {i}: {name} cannot run; "
                                 "the model is not deterministic")
            if i >= self.replay_len:
                self._races_of(ex, task)
            return task, choices
        prev = ex.tasks[ex.ev_task[-1]].name if ex.ev_task else None
        pre = 0
        if path:
            parent = path[-1]
            pre = parent.preemptions + self._is_preemption(parent, parent.taken[0])
        node = _Node({t.name: t.pending for t in enabled},
                     {t.name: t.pending for t in ex.tasks if not t.done},
                     self.child_sleep, self.next_wakeup, prev, pre, ex.nkeys)
        self.next_wakeup = []
        path.append(node)
        tree = node.wakeup
        while tree:                      # follow the wakeup tree
            b = tree[0]
            name = b.step.task
            if name not in node.enabled:
                del tree[0]              # a sequence that cannot go on here
                continue
            if self._over_bound(node, name):
                del tree[0]
                continue
            node.taken = (name, b.step.choices or ())
            node.first = True
            self.next_wakeup = b.children
            task = ex.by_name[name]
            self._races_of(ex, task)
            return task, node.taken[1]
        sleep = node.sleep
        chosen = None
        for name in node.enabled:       # run on without a preemption where possible
            if name in sleep:
                continue
            if name == prev:
                chosen = name
                break
            if chosen is None:
                chosen = name
        if chosen is None:
            self.blocked_outcome = "sleep-blocked"
            return None
        if self._over_bound(node, chosen):
            self.blocked_outcome = "bound-blocked"
            return None
        node.taken = (chosen, ())
        node.first = True
        task = ex.by_name[chosen]
        self._races_of(ex, task)
        return task, ()

    def after_step(self, ex: Execution, task: Task, used: tuple) -> None:
        i = ex.nsteps - 1
        if i < self.replay_len:
            return                      # a replayed step (prefix reuse off)
        node = self.path[i]
        op = node.pending[task.name]
        if used:
            explicit = 0 if node.first else len(node.taken[1])
            values = tuple(v for _, v in used)
            for k in range(len(used) - 1, explicit - 1, -1):
                for v in range(used[k][0] - 1, -1, -1):
                    if v != values[k]:
                        node.choice_todo.append(values[:k] + (v,))
        node.first = False
        sleep = {}
        for q, qop in node.sleep.items():
            if self._stays_asleep(ex, q, qop, op):
                sleep[q] = qop
        for q, qop in node.done.items():
            if q != task.name and self._stays_asleep(ex, q, qop, op):
                sleep[q] = qop
        self.child_sleep = sleep

    @staticmethod
    def _stays_asleep(ex: Execution, q: str, qop, op) -> bool:
        """Whether ``q``, asleep before ``op`` ran, sleeps after it: its op and ``op``
        are independent in the state where ``op`` ran.  ``qop`` was taken at another
        state, maybe in another execution, so a DEC counts as a write
        (``may_conflict``), except that two decrements of one count commute when both
        stay above zero in either order: ``op`` stayed above it and q's own op, taken
        now (``op`` done), still would."""
        if not may_conflict(qop, op):
            return True
        if op.kind != DEC or not qop.dynamic:
            return False
        live = ex.by_name[q].pending
        return live is not None and live.dynamic and live.key == op.key and live.kind == DEC

    # -- races ---------------------------------------------------------------------

    def _races_of(self, ex: Execution, q: Task) -> None:
        """The races of ``q``'s next op, about to run (or never run, at the end): the
        events of its object that conflict with it, could be enabled with it, do not
        happen-before it and do not happen-before another such event."""
        qop = q.pending
        if qop.kind == LOCAL or qop.key < 0:
            return
        events = ex.object_events(qop.key)
        if not events:
            return
        ev_task, ev_local, ev_op, ev_vc = ex.ev_task, ex.ev_local, ex.ev_op, ex.ev_vc
        qk = qop.kind
        qvc = ex.clock(q.index)
        nq = len(qvc)
        found: list[int] = []
        for j in reversed(events):
            tj = ev_task[j]
            kj = ev_op[j].kind
            wl = CLASS[kj] == 2
            if tj < nq and qvc[tj] >= ev_local[j]:
                if wl:
                    break       # it and everything before it happen-before q's op
                continue
            if not CONFLICT[kj][qk] or NOT_CO_ENABLED[kj][qk]:
                continue
            lj = ev_local[j]
            if not any(len(ev_vc[r]) > tj and ev_vc[r][tj] >= lj for r in found):
                if not self._race(ex, j, q, qop):
                    # q could not run before j (j is what it waits for): not a race,
                    # as if the two were never enabled together -- the race is with
                    # an earlier event, so look further back
                    continue
                found.append(j)
            if wl:
                break           # what came before it happens-before it

    def _end_races(self, ex: Execution) -> None:
        """Ops that never ran (their tasks blocked at the end) race too."""
        if ex.nsteps <= self.replay_len:
            return
        for q in ex.tasks:
            if not q.done:
                self._races_of(ex, q)

    def _race(self, ex: Execution, j: int, q: Task, qop) -> bool:
        """If event ``j`` races with ``q``'s next op, put the reversal in the wakeup tree
        of the state before ``j`` and return True; False if it is no race (not even one
        that cannot be reversed because q must wait for j)."""
        tj = ex.ev_task[j]
        if tj == q.index:
            return False
        opj = ex.ev_op[j]
        if not conflict(opj, qop) or not co_enabled(opj, qop):
            return False
        qvc = ex.clock(q.index)
        if len(qvc) > tj and qvc[tj] >= ex.ev_local[j]:
            return False            # j happens-before q's next op: no race
        node = self.path[j]
        seq = self._reversal(ex, j, q, qop)
        if q.name not in node.enabled and \
                bisect_right(ex.t_events[q.index], j) == len(ex.t_events[q.index]) and \
                not any(may_conflict(e.op, qop) for e in seq[:-1]):
            # q waited at this very op before j and nothing in v can enable it: the
            # two cannot be reordered, so this is no race
            return False
        self._insert(node, seq)
        return True

    def _reversal(self, ex: Execution, j: int, q: Task, qop) -> list[SeqEvent]:
        """v = notdep(j).q: the events after j that do not happen-after it, in order, and
        q's next op, which happens after every event of v it conflicts with."""
        tj, lj = ex.ev_task[j], ex.ev_local[j]
        ev_vc = ex.ev_vc
        idx: list[int] = []
        for t, evs in enumerate(ex.t_events):
            if t == tj:
                continue            # tj's later events happen after j
            a = bisect_right(evs, j)
            lo, hi = a, len(evs)
            while lo < hi:          # happening-after j is monotone along a task's events
                mid = (lo + hi) // 2
                vc = ev_vc[evs[mid]]
                if len(vc) > tj and vc[tj] >= lj:
                    hi = mid
                else:
                    lo = mid + 1
            if lo > a:
                idx.extend(evs[a:lo])
        idx.sort()
        tasks, ev_task, ev_op, ev_local = ex.tasks, ex.ev_task, ex.ev_op, ex.ev_local
        choices = ex.ev_choices
        seen_in = self.execution_id
        seq = []
        qvc = list(ex.clock(q.index))
        qkey, qkind = qop.key, qop.kind
        for k in idx:
            t = ev_task[k]
            op = ev_op[k]
            vc = ev_vc[k]
            seq.append(SeqEvent(t, tasks[t].name, op, vc, ev_local[k], choices.get(k, ()),
                                seen_in))
            if op.key == qkey and CONFLICT[op.kind][qkind]:
                if len(vc) > len(qvc):
                    qvc.extend([0] * (len(vc) - len(qvc)))
                for i, x in enumerate(vc):
                    if x > qvc[i]:
                        qvc[i] = x
        seq.append(SeqEvent(q.index, q.name, qop, qvc, qvc[q.index] + 1, None, seen_in))
        return seq

    # -- wakeup trees --------------------------------------------------------------

    def _insert(self, node: _Node, seq: list[SeqEvent]) -> bool:
        """Insert a reversal into ``node``'s wakeup tree (``wakeup.insert``); False if a
        task sleeping or explored there, or a leaf of the tree, covers it already."""
        return insert(node.wakeup, seq, node.nkeys, (node.sleep, node.done),
                      self.weak_initials) is not None

    # -- search --------------------------------------------------------------------

    def _is_preemption(self, node: _Node, name: str) -> int:
        return int(node.prev is not None and name != node.prev and node.prev in node.enabled)

    def _over_bound(self, node: _Node, name: str) -> bool:
        if self.bound is None or node.preemptions + self._is_preemption(node, name) <= \
                self.bound:
            return False
        self.pruned_by_bound = True
        return True

    def _next_branch(self) -> bool:
        path = self.path
        while path:
            node = path[-1]
            if node.taken is None:          # a blocked leaf
                path.pop()
                continue
            name = node.taken[0]
            if node.choice_todo:
                node.taken = (name, node.choice_todo.pop())
                node.first = False
                self.next_wakeup = []
                self.replay_len = len(path) - 1
                return True
            node.done[name] = node.pending[name]
            tree = node.wakeup
            tree[:] = [b for b in tree if b.step.task != name]
            while tree:
                b = tree[0]
                cand = b.step.task
                if cand in node.done or cand not in node.enabled or \
                        self._over_bound(node, cand):
                    del tree[0]
                    continue
                node.taken = (cand, b.step.choices or ())
                node.first = True
                self.next_wakeup = b.children
                self.replay_len = len(path) - 1
                return True
            path.pop()
        return False

    # -- Strategy ------------------------------------------------------------------

    def label(self) -> str:
        return self.name if self.bound is None else f"bounded(k={self.bound})"

    def next_execution(self) -> bool:
        if self.last is not None and not self._next_branch():
            return False
        self.child_sleep = {}
        return True

    def after_execution(self, ex: Execution) -> None:
        self._end_races(ex)
        self.last = ex
        self.execution_id += 1

    def complete(self) -> bool:
        return not self.pruned_by_bound
