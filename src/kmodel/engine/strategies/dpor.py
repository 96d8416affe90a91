"""Exhaustive exploration with dynamic partial-order reduction and sleep sets.

The search is stateless: every execution re-runs the program from its constructor along a
prefix of the previous one.  At each state first reached, for every task's next op the
last earlier event that conflicts with it, could have been enabled with it, and does not
happen-before it is a race; the state before that event gets a backtrack point for the
task (or, when the task could not run there, for every task that could) — Flanagan and
Godefroid, POPL 2005.  Sleep sets keep sibling branches from re-exploring orders of
independent steps.  Nondeterministic choices inside a step are explored exhaustively at
the node where the step is taken.

``preemption_bound`` turns this into bounded search (CHESS): a branch that switches away
from a task that could still run counts a preemption, and branches over the bound are not
taken.  Bounded search is not complete for the unbounded state space.
"""

from __future__ import annotations

from ..execution import Execution, ModelError, Task
from ..explore import Collector, Limits, Result, run_execution
from ..ops import LOCAL, co_enabled, conflict


class _Node:
    __slots__ = ("enabled", "pending", "backtrack", "done", "sleep", "taken", "choice_todo",
                 "prev", "preemptions", "hints")

    def __init__(self, enabled, pending, sleep, prev, preemptions):
        self.enabled: list[str] = enabled
        self.pending: dict = pending          # task name -> its next op, every live task
        self.backtrack: list[str] = []
        self.done: dict = {}                  # explored task -> its op (sleeps in siblings)
        self.sleep: dict = sleep
        self.taken: tuple[str, tuple] | None = None
        self.choice_todo: list[tuple] = []
        self.prev: str | None = prev          # the task that ran the step before
        self.preemptions = preemptions        # preemptions on the path up to this node
        self.hints: dict = {}                 # backtrack entry -> the steps that follow it


class Dpor:
    name = "dpor"

    def __init__(self, preemption_bound: int | None = None):
        self.bound = preemption_bound
        self.path: list[_Node] = []
        self.replay_len = 0
        self.child_sleep: dict = {}
        self.pruned_by_bound = False
        self.guide: list[str] = []            # steps to follow after a backtrack point

    # -- Decider -------------------------------------------------------------------

    def pick(self, ex: Execution, enabled: list[Task]):
        i = len(ex.trace)
        if i < len(self.path):
            node = self.path[i]
            name, choices = node.taken
            task = ex.by_name.get(name)
            if task is None or task.done or not task.pending.enabled():
                raise ModelError(f"replay diverged at step {i}: {name} cannot run; "
                                "the model is not deterministic")
            return task, choices
        prev = ex.tasks[ex.ev_task[-1]].name if ex.ev_task else None
        parent_pre = self.path[-1].preemptions if self.path else 0
        if self.path:
            parent = self.path[-1]
            parent_pre += self._is_preemption(parent, parent.taken[0])
        node = _Node([t.name for t in enabled], {t.name: t.pending for t in ex.live_tasks()},
                     self.child_sleep, prev, parent_pre)
        self.path.append(node)
        awake = [t for t in enabled if t.name not in node.sleep]
        if not awake:
            return None
        chosen = None
        while self.guide and chosen is None:   # follow the race being reversed
            want = self.guide.pop(0)
            chosen = next((t for t in awake if t.name == want), None)
        if chosen is None:
            chosen = awake[0]
            for t in awake:        # run on without a preemption where possible
                if t.name == prev:
                    chosen = t
                    break
        node.backtrack.append(chosen.name)
        node.taken = (chosen.name, ())
        return chosen, ()

    def after_step(self, ex: Execution, task: Task, used: tuple) -> None:
        i = len(ex.trace) - 1
        node = self.path[i]
        op = node.pending[task.name]
        fresh = i >= self.replay_len
        if fresh and used:
            explicit = len(node.taken[1])
            for k in range(len(used) - 1, explicit - 1, -1):
                arity = used[k][0]
                prefix = tuple(v for _, v in used[:k])
                for v in range(arity - 1, 0, -1):
                    node.choice_todo.append(prefix + (v,))
        sleep = {}
        for q, qop in node.sleep.items():
            if not conflict(qop, op):
                sleep[q] = qop
        for q, qop in node.done.items():
            if q != task.name and not conflict(qop, op):
                sleep[q] = qop
        self.child_sleep = sleep
        if fresh:
            self._races(ex, task)

    # -- races ---------------------------------------------------------------------

    def _races(self, ex: Execution, moved: Task) -> None:
        last = len(ex.ev_task) - 1
        last_op = ex.ev_op[last]
        for q in ex.tasks:
            if q.done:
                continue
            qop = q.pending
            if qop.kind == LOCAL or qop.key < 0:
                continue
            if q is moved:
                st = ex._objs.get(qop.key)
                if st is None:
                    continue
                for j in reversed(st.events):
                    if self._race(ex, j, q, qop):
                        break
            elif last_op.key == qop.key:
                self._race(ex, last, q, qop)

    def _race(self, ex: Execution, j: int, q: Task, qop) -> bool:
        tj = ex.ev_task[j]
        if tj == q.index:
            return False
        opj = ex.ev_op[j]
        if not conflict(opj, qop) or not co_enabled(opj, qop):
            return False
        qvc = ex.tvc[q.index]
        if len(qvc) > tj and qvc[tj] >= ex.ev_local[j]:
            return False            # j happens-before q's next op: no race
        node = self.path[j]
        initials, seq = self._initials(ex, j, q)
        if any(name in node.backtrack for name in initials):
            return True
        for name in initials:
            if name in node.enabled:
                node.backtrack.append(name)
                rest = list(seq)
                rest.remove(name)
                node.hints[name] = rest
                return True
        # No initial of v can run before event j (the op waits for what j does, as a
        # blocked wait or a spawn does): the race cannot be reversed.
        return True

    def _initials(self, ex: Execution, j: int, q: Task) -> tuple[list[str], list[str]]:
        """Source sets (Abdulla et al., POPL 2014): the tasks that can start
        v = notdep(j).q -- the events after j that do not happen-after it, then q's next
        op -- i.e. whose first event in v has no happens-before predecessor in v."""
        tj, lj = ex.ev_task[j], ex.ev_local[j]
        ev_task, ev_vc, ev_local = ex.ev_task, ex.ev_vc, ex.ev_local
        v = [k for k in range(j + 1, len(ev_task))
             if not (len(ev_vc[k]) > tj and ev_vc[k][tj] >= lj)]
        initials: list[str] = []
        seen: set[int] = set()
        for pos, k in enumerate(v):
            t = ev_task[k]
            if t in seen:
                continue
            seen.add(t)
            vc = ev_vc[k]
            if not any(len(vc) > ev_task[m] and vc[ev_task[m]] >= ev_local[m]
                       for m in v[:pos] if ev_task[m] != t):
                initials.append(ex.tasks[t].name)
        if q.index not in seen:
            qvc = ex.tvc[q.index]
            if not any(len(qvc) > ev_task[m] and qvc[ev_task[m]] >= ev_local[m]
                       for m in v if ev_task[m] != q.index):
                initials.insert(0, q.name)
        elif q.name in initials:
            initials.remove(q.name)
            initials.insert(0, q.name)
        seq = [ex.tasks[ev_task[k]].name for k in v] + [q.name]
        return initials, seq

    # -- search --------------------------------------------------------------------

    def _is_preemption(self, node: _Node, name: str) -> int:
        return int(node.prev is not None and name != node.prev and node.prev in node.enabled)

    def _next_branch(self) -> bool:
        while self.path:
            node = self.path[-1]
            if node.taken is None:          # a sleep-blocked leaf
                self.path.pop()
                continue
            name = node.taken[0]
            if node.choice_todo:
                node.taken = (name, node.choice_todo.pop())
                self.guide = []
                self.replay_len = len(self.path) - 1
                return True
            node.done[name] = node.pending[name]
            for cand in node.backtrack:
                if cand in node.done or cand in node.sleep:
                    continue
                if self.bound is not None and \
                        node.preemptions + self._is_preemption(node, cand) > self.bound:
                    self.pruned_by_bound = True
                    continue
                node.taken = (cand, ())
                self.guide = list(node.hints.get(cand, ()))
                self.replay_len = len(self.path) - 1
                return True
            self.path.pop()
        return False

    def explore(self, factory, limits: Limits, collector: Collector | None = None) -> Result:
        col = collector or Collector(self.name if self.bound is None
                                     else f"bounded(k={self.bound})", limits)
        complete = False
        try:
            while True:
                self.child_sleep = {}
                ex = run_execution(factory, self, limits)
                if not col.add(ex):
                    complete = not self._next_branch() and not self.pruned_by_bound
                    break
                if not self._next_branch():
                    complete = not self.pruned_by_bound
                    break
        except KeyboardInterrupt:
            col.result.interrupted = True
        return col.finish(complete)
