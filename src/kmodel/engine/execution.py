"""One execution: tasks, steps, vector clocks, the data-race check, and the end.

An execution is driven one step at a time by a strategy: ``step(task)`` performs the op the
task is waiting at and runs the task's plain code up to its next op.  The program under
test (a scenario instance) starts the tasks and judges how the execution ended; the engine
knows nothing else about it.

Happens-before is tracked with vector clocks built from conflicting ops (``ops.conflict``),
so the same clocks serve DPOR (which event races with which) and the data-race detector
(two plain accesses that no chain of conflicting ops orders).
"""

from __future__ import annotations

import inspect
from typing import Protocol

from .ops import LOCAL, READ, WRITE, Choice, Op, read_like
from .report import Report
from .schedule import encode

_current: "Execution | None" = None


def current_execution() -> "Execution":
    if _current is None:
        raise RuntimeError("no execution is running")
    return _current


def current_task() -> "Task":
    ex = current_execution()
    if ex.running is None:
        raise RuntimeError("no task is running")
    return ex.running


class ModelError(Exception):
    """The model (or a patch over it) is broken: not a finding about the kernel."""


class TaskKilled(BaseException):
    """Raised inside a task to end it where it stands (BUG_ON, a fatal signal)."""


class Program(Protocol):
    def start(self, ex: "Execution") -> None: ...
    def at_deadlock(self, ex: "Execution", blocked: list["Task"]) -> None: ...
    def at_livelock(self, ex: "Execution") -> None: ...
    def at_end(self, ex: "Execution") -> None: ...
    def on_data_race(self, ex: "Execution", earlier: "Access", later: "Access") -> None: ...


class _StartOp(Op):
    __slots__ = ()


class Task:
    """A CPU running one coroutine.  ``ctx`` is the program's own per-task state;
    ``frames`` is the stack of function names the program keeps for call traces."""

    __slots__ = ("name", "index", "coro", "pending", "done", "ctx", "frames", "resume")

    def __init__(self, name, index, coro, ctx):
        self.name = name
        self.index = index
        self.coro = coro
        self.pending: Op | None = _StartOp(None, LOCAL, f"start {name}")
        self.done = False
        self.ctx = ctx
        self.frames: list[str] = []
        self.resume = None

    def where(self) -> str:
        return self.frames[-1] if self.frames else self.name

    def __repr__(self):
        return f"<task {self.name}>"


class Access:
    """One side of a data race."""

    __slots__ = ("task", "local", "plain", "write", "label", "step", "frames")

    def __init__(self, task, local, plain, write, label, step, frames):
        self.task = task
        self.local = local
        self.plain = plain
        self.write = write
        self.label = label
        self.step = step
        self.frames = frames


class _ObjState:
    __slots__ = ("obj", "w_vc", "r_vc", "w_acc", "r_acc", "events")

    def __init__(self, obj):
        self.obj = obj          # pinned so that id() stays unique for the execution
        self.w_vc = None        # clock of the last non-read-like op
        self.r_vc = None        # join of the read-like ops since then
        self.w_acc = None       # last plain/marked write, for the race detector
        self.r_acc = {}         # task index -> last read since that write
        self.events = []        # indices of every event on this object (for DPOR)


def _join(a: list, b) -> None:
    if b is None:
        return
    if len(b) > len(a):
        a.extend([0] * (len(b) - len(a)))
    for i, x in enumerate(b):
        if x > a[i]:
            a[i] = x


class Execution:
    def __init__(self, max_steps: int = 5000, detect_races: bool = True):
        self.max_steps = max_steps
        self.detect_races = detect_races
        self.tasks: list[Task] = []
        self.by_name: dict[str, Task] = {}
        self.running: Task | None = None
        self.schedule: list[str] = []
        self.trace: list[tuple[str, str, str]] = []   # (task, function, op label)
        self.reports: list[Report] = []
        self.outcome: str | None = None
        self.blocked: list[Task] = []
        self.metrics: dict[str, float] = {}   # numbers the program measured
        self.program: Program | None = None
        self.created: list = []          # coroutines created during the current step
        # per-task vector clocks, per-event data for DPOR and equivalence classes
        self.tvc: list[list[int]] = []
        self.ev_task: list[int] = []
        self.ev_local: list[int] = []
        self.ev_op: list[Op] = []
        self.ev_vc: list[tuple] = []
        self._objs: dict[int, _ObjState] = {}
        self._choices_in: list[int] = []
        self._choices_used: list[tuple[int, int]] = []
        self.choice_source = None        # strategy hook: arity -> value, past the given list
        self._race_seen: set = set()
        self._keys: dict[int, int] = {}
        self._pinned: list = []

    # -- building ------------------------------------------------------------------

    def spawn(self, name: str, coro, ctx=None) -> Task:
        """Start a task.  Called by the program's start() or by a running task (a
        workqueue spawning its kworker); the child happens-after its parent's step."""
        if name in self.by_name:
            raise ModelError(f"two tasks named {name!r}")
        if not inspect.iscoroutine(coro):
            raise ModelError(f"task {name!r} must be a coroutine, got {type(coro).__name__}")
        self._forget_created(coro)
        task = Task(name, len(self.tasks), coro, ctx)
        self.tasks.append(task)
        self.by_name[name] = task
        vc = list(self.tvc[self.running.index]) if self.running is not None else []
        if len(vc) <= task.index:
            vc.extend([0] * (task.index + 1 - len(vc)))
        self.tvc.append(vc)
        return task

    def track(self, coro) -> None:
        """Register a coroutine the model created, so that one never awaited is caught."""
        self.created.append(coro)

    def _forget_created(self, coro) -> None:
        for i, c in enumerate(self.created):
            if c is coro:
                del self.created[i]
                return

    # -- running -------------------------------------------------------------------

    def enabled_tasks(self) -> list[Task]:
        return [t for t in self.tasks if not t.done and t.pending.enabled()]

    def live_tasks(self) -> list[Task]:
        return [t for t in self.tasks if not t.done]

    def step(self, task: Task, choices: tuple[int, ...] = ()) -> tuple[tuple[int, int], ...]:
        """Perform ``task``'s pending op and run it to its next op.  Returns the choices
        resolved on the way as (arity, value) pairs."""
        global _current
        op = task.pending
        if task.done or not op.enabled():
            raise ModelError(f"task {task.name} scheduled while not runnable")
        self._record(task, op)
        self._choices_in = list(choices)
        self._choices_used = []
        self.running = task
        prev, _current = _current, self
        value = None
        try:
            while True:
                try:
                    nxt = task.coro.send(value)
                except StopIteration:
                    task.done = True
                    task.pending = None
                    break
                except TaskKilled:
                    task.done = True
                    task.pending = None
                    break
                if isinstance(nxt, Choice):
                    value = self._take_choice(nxt)
                    continue
                if not isinstance(nxt, Op):
                    raise ModelError(f"task {task.name} awaited {nxt!r}, which is not an op "
                                     f"(in {task.where()})")
                if nxt.obj is not None:
                    nxt.key = self._key(nxt.obj)
                task.pending = nxt
                break
        finally:
            self.running = None
            _current = prev
        if self.created:
            self._check_created(task)
        used = tuple(self._choices_used)
        self.schedule.append(encode(task.name, tuple(v for _, v in used)))
        return used

    def _key(self, obj) -> int:
        # An object, or an (object, field name) pair naming one field of it.
        ident = (id(obj[0]), obj[1]) if type(obj) is tuple else id(obj)
        k = self._keys.get(ident)
        if k is None:
            k = self._keys[ident] = len(self._pinned)
            self._pinned.append(obj)     # keeps id() unique for the execution
        return k

    def _take_choice(self, choice: Choice) -> int:
        k = len(self._choices_used)
        if k < len(self._choices_in):
            v = self._choices_in[k]
        elif self.choice_source is not None:
            v = self.choice_source(choice.n)
        else:
            v = 0
        if not 0 <= v < choice.n:
            raise ModelError(f"choice {choice.label} has {choice.n} values, schedule asks {v}")
        self._choices_used.append((choice.n, v))
        return v

    def _check_created(self, task: Task) -> None:
        stale = [c for c in self.created
                 if inspect.getcoroutinestate(c) == inspect.CORO_CREATED]
        self.created.clear()
        if stale:
            names = ", ".join(c.__qualname__ for c in stale)
            for c in stale:
                c.close()
            raise ModelError(f"coroutine {names}() created but never awaited "
                             f"(task {task.name}, in {task.where()})")

    def _record(self, task: Task, op: Op) -> None:
        t = task.index
        vc = self.tvc[t]
        vc[t] += 1
        local = vc[t]
        step = len(self.ev_task)
        self.trace.append((task.name, task.where(), op.label))
        self.ev_task.append(t)
        self.ev_local.append(local)
        self.ev_op.append(op)
        if op.kind == LOCAL or op.obj is None:
            self.ev_vc.append(tuple(vc))
            return
        key = op.key
        st = self._objs.get(key)
        if st is None:
            st = self._objs[key] = _ObjState(op.obj)
        if self.detect_races and (op.kind == READ or op.kind == WRITE):
            self._check_race(task, st, op, vc, local, step)
        if read_like(op.kind):
            _join(vc, st.w_vc)
            if st.r_vc is None:
                st.r_vc = list(vc)
            else:
                _join(st.r_vc, vc)
        else:
            _join(vc, st.w_vc)
            _join(vc, st.r_vc)
            st.w_vc = list(vc)
            st.r_vc = None
        st.events.append(step)
        self.ev_vc.append(tuple(vc))

    def _check_race(self, task, st, op, vc, local, step) -> None:
        acc = Access(task.index, local, op.plain, op.kind == WRITE, op.label, step,
                     list(task.frames))
        others = []
        if st.w_acc is not None:
            others.append(st.w_acc)
        if op.kind == WRITE:
            others.extend(st.r_acc.values())
        for prev in others:
            if prev.task == task.index or not (prev.plain or acc.plain):
                continue
            if len(vc) > prev.task and vc[prev.task] >= prev.local:
                continue  # ordered by some chain of conflicting ops
            key = (prev.label, acc.label)
            if key in self._race_seen:
                continue
            self._race_seen.add(key)
            if self.program is not None:
                self.program.on_data_race(self, prev, acc)
        if op.kind == WRITE:
            st.w_acc = acc
            st.r_acc = {}
        else:
            st.r_acc[task.index] = acc

    # -- results -------------------------------------------------------------------

    def report(self, r: Report) -> None:
        if r.step < 0:
            r.step = len(self.trace) - 1
        self.reports.append(r)

    def task_name(self, index: int) -> str:
        return self.tasks[index].name

    def class_key(self) -> tuple:
        """The execution's Mazurkiewicz trace: per task, its ops and their vector clocks.
        Equal for every interleaving that only reorders independent ops."""
        per_task: list[list] = [[] for _ in self.tasks]
        for t, op, vc in zip(self.ev_task, self.ev_op, self.ev_vc):
            per_task[t].append((op.label, vc))
        return tuple((self.tasks[i].name, tuple(evs)) for i, evs in enumerate(per_task))

    def close(self) -> None:
        """Throw away the tasks still blocked when the execution ended."""
        global _current
        prev, _current = _current, self
        try:
            for t in self.tasks:
                if not t.done:
                    self.running = t
                    try:
                        t.coro.close()
                    except Exception:
                        pass
        finally:
            self.running = None
            _current = prev
