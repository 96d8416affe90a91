"""One execution: tasks, steps, vector clocks, the data-race check, and the end.

An execution is driven one step at a time by a strategy: ``step(task)`` performs the op the
task is waiting at and runs the task's plain code up to its next op.  The program under
test (a scenario instance) starts the tasks and judges how the execution ended; the engine
knows nothing else about it.

Happens-before is tracked with vector clocks built from conflicting ops (``ops.conflict``),
so the same clocks serve DPOR (which event races with which) and the data-race detector
(two plain accesses that no chain of conflicting ops orders).

Re-running a prefix.  A stateless search re-runs the program from its constructor for
every execution, and most executions share a long prefix with the one before.  The model
has to re-run that prefix (nothing is copied), but the engine's bookkeeping for it -- the
vector clocks, the per-object history, the trace -- is the same as last time.  So an
execution can start *bare*: ``resume_from(base, d)`` says that its first ``d`` steps repeat
``base``'s, they run without bookkeeping, and at step ``d`` the bookkeeping is taken over
from ``base``, cut back to that point.  From then on the execution is recorded in full.
"""

from __future__ import annotations

import hashlib
import inspect
from bisect import bisect_left
from typing import Protocol

from .ops import CLASS, DEC, LOCAL, READ, UPDATE, WRITE, Choice, Op
from .report import Report
from .schedule import encode

_current: "Execution | None" = None

# -- class fingerprints ----------------------------------------------------------------
#
# ``Execution.class_hash()`` identifies an execution's Mazurkiewicz trace (``class_key()``)
# by a number kept up to date step by step.  The trace is the set of its events, each one
# its task, its op's label and its vector clock (which also fixes its place in its task's
# sequence), so the fingerprint combines one hash per event with a commutative operation
# (a sum mod 2**64): reordering independent events changes nothing.  For the sum not to
# collide, each event's hash must look random: a per-event hash that is close to linear in
# the clock entries (as Python's tuple hash of small ints is) lets the +1/-1 moves of clock
# entries between two classes cancel out.  So each event's hash goes through the splitmix64
# finalizer, a bijection of 64-bit numbers whose output bits each depend on every input bit,
# before it is added.  Nothing in it is salted per process: the (task, label) pair is
# named by a blake2b digest, and ints and tuples of ints hash the same in every process, so
# the fingerprint is the same under any PYTHONHASHSEED and in every worker process.

_M64 = (1 << 64) - 1
_EVENT_IDS: dict = {}      # (task name, op label) -> its 64-bit blake2b digest


def _event_id(name: str, label) -> int:
    v = int.from_bytes(hashlib.blake2b(f"{name}\0{label}".encode(), digest_size=8).digest(),
                       "little")
    if len(_EVENT_IDS) >= 1 << 16:         # labels are few; never let the cache grow
        _EVENT_IDS.clear()
    _EVENT_IDS[(name, label)] = v
    return v


def event_hash(name: str, label, clock: tuple) -> int:
    """One event's contribution to ``Execution.class_hash()`` (``_record`` inlines it)."""
    sid = _EVENT_IDS.get((name, label))
    if sid is None:
        sid = _event_id(name, label)
    z = hash((sid, clock)) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def current_execution() -> "Execution":
    if _current is None:
        raise RuntimeError("no execution is running")
    return _current


def current_task() -> "Task":
    ex = _current
    if ex is None:
        raise RuntimeError("no execution is running")
    t = ex.running
    if t is None:
        raise RuntimeError("no task is running")
    return t


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

    __slots__ = ("name", "index", "coro", "pending", "done", "ctx", "frames")

    def __init__(self, name, index, coro, ctx):
        self.name = name
        self.index = index
        self.coro = coro
        self.pending: Op | None = _StartOp(None, LOCAL, f"start {name}")
        self.done = False
        self.ctx = ctx
        self.frames: list[str] = []

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
    __slots__ = ("w_vc", "r_vc", "u_vc", "d_vc", "w_acc", "r_acc", "u_acc", "d_acc", "events",
                 "accs")

    def __init__(self):
        self.w_vc = None        # clock after the last write-like op
        self.r_vc = None        # join of the read-like ops since then
        self.u_vc = None        # join of the UPDATEs since then
        self.d_vc = None        # join of the DECs since then
        self.w_acc = None       # last write, for the race detector
        self.r_acc = {}         # task index -> last read since that write
        self.u_acc = {}         # task index -> last update since that write
        self.d_acc = {}         # task index -> last DEC since that write
        self.events = []        # indices of every event on this object (for DPOR)
        self.accs = []          # the race detector's Access of each event (or None)

    def rewind(self, d: int, ev_op, ev_vc, races: bool) -> bool:
        """Forget the events from step ``d`` on; False if none is left."""
        ev = self.events
        n = len(ev)
        while n and ev[n - 1] >= d:
            n -= 1
        if n == 0:
            return False
        del ev[n:]
        w = r = u = dv = None
        for i in range(n - 1, -1, -1):
            k = ev[i]
            c = CLASS[ev_op[k].kind]
            if c == 2:
                w = list(ev_vc[k])
                break
            if c == 0:
                r = _joined(r, ev_vc[k])
            elif c == 1:
                u = _joined(u, ev_vc[k])
            else:
                dv = _joined(dv, ev_vc[k])
        self.w_vc, self.r_vc, self.u_vc, self.d_vc = w, r, u, dv
        if races:
            accs = self.accs
            del accs[n:]
            self.w_acc = None
            r_acc: dict = {}
            u_acc: dict = {}
            d_acc: dict = {}
            for i in range(n - 1, -1, -1):
                a = accs[i]
                if a is None:
                    continue
                kind = ev_op[ev[i]].kind
                if kind == WRITE:
                    self.w_acc = a
                    break
                target = r_acc if kind == READ else u_acc if kind == UPDATE else d_acc
                if a.task not in target:
                    target[a.task] = a
            self.r_acc, self.u_acc, self.d_acc = r_acc, u_acc, d_acc
        return True


def _joined(a, b):
    """a joined with b (a list, or None), as a new or updated list."""
    if a is None:
        return list(b)
    if len(b) > len(a):
        a.extend([0] * (len(b) - len(a)))
    for i, x in enumerate(b):
        if x > a[i]:
            a[i] = x
    return a


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
        self.nsteps = 0                   # steps taken so far
        self.schedule: list[str] = []
        self.trace: list[tuple[str, str, str]] = []   # (task, function, op label)
        self.reports: list[Report] = []
        self.outcome: str | None = None
        self.blocked: list[Task] = []
        self.metrics: dict[str, float] = {}   # numbers the program measured
        self.program: Program | None = None
        self.created: list = []          # coroutines created during the current step
        # per-task vector clocks, per-event data for DPOR and equivalence classes
        self._tvc: list[list[int]] = []   # each task's vector clock (clock())
        self.spawn_vc: list[tuple] = []   # each task's clock when it was spawned
        self.t_events: list[list[int]] = []   # each task's events
        self.ev_task: list[int] = []
        self.ev_local: list[int] = []
        self.ev_op: list[Op] = []
        self.ev_vc: list[tuple] = []
        self.ev_hash: list[int] = []      # the class fingerprint after each event
        self.ev_choices: dict[int, tuple] = {}   # event -> the choice values it resolved
        self._objs: dict[int, _ObjState] = {}
        self._choices_in: tuple = ()
        self._choices_used: list[tuple[int, int]] = []
        self.choice_source = None        # strategy hook: arity -> value, past the given list
        self._race_seen: dict = {}       # (label, label) -> step first reported
        self._keys: dict = {}
        self._pinned: list = []
        self.full = True                 # bookkeeping on (off while re-running a prefix)
        self._base: Execution | None = None
        self._resume_at = 0

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
        if self.full:
            vc = list(self._tvc[self.running.index]) if self.running is not None else []
            if len(vc) <= task.index:
                vc.extend([0] * (task.index + 1 - len(vc)))
            self.spawn_vc.append(tuple(vc))
            self.t_events.append([])
        else:
            # re-running a prefix: only each task's own step count is kept (the model
            # reads it); the clocks are taken over from the base execution later
            vc = [0] * (task.index + 1)
        self._tvc.append(vc)
        return task

    def track(self, coro) -> None:
        """Register a coroutine the model created, so that one never awaited is caught."""
        self.created.append(coro)

    def _forget_created(self, coro) -> None:
        for i, c in enumerate(self.created):
            if c is coro:
                del self.created[i]
                return

    def resume_from(self, base: "Execution", d: int) -> None:
        """Declare that the first ``d`` steps repeat ``base``'s: they run bare, and the
        bookkeeping is taken over from ``base`` at step ``d``.  Call before start()."""
        if d <= 0:
            return
        self.full = False
        self._base = base
        self._resume_at = d

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
        full = self.full
        if full:
            self._record(task, op)
        else:
            self._tvc[task.index][task.index] += 1
        self._choices_in = choices
        used = self._choices_used = []
        self.running = task
        prev, _current = _current, self
        value = None
        coro = task.coro
        try:
            while True:
                try:
                    nxt = coro.send(value)
                except StopIteration:
                    task.done = True
                    task.pending = None
                    break
                except TaskKilled:
                    task.done = True
                    task.pending = None
                    break
                if isinstance(nxt, Op):
                    obj = nxt.obj
                    if obj is not None:
                        ident = (id(obj[0]), *obj[1:]) if type(obj) is tuple else id(obj)
                        k = self._keys.get(ident)
                        if k is None:
                            k = self._keys[ident] = len(self._pinned)
                            self._pinned.append(obj)   # keeps id() unique for the execution
                        nxt.key = k
                    task.pending = nxt
                    break
                if isinstance(nxt, Choice):
                    value = self._take_choice(nxt)
                    continue
                raise ModelError(f"task {task.name} awaited {nxt!r}, which is not an op "
                                 f"(in {task.where()})")
        finally:
            self.running = None
            _current = prev
        self.nsteps += 1
        if self.created:
            if full:
                self._check_created(task)
            else:
                self.created.clear()
        if not used:
            if full:
                self.schedule.append(task.name)
            return ()
        used = tuple(used)
        if full:
            values = tuple(v for _, v in used)
            self.ev_choices[self.nsteps - 1] = values
            self.schedule.append(encode(task.name, values))
        return used

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

    def _check_created(self, task: Task | None) -> None:
        # a coroutine that was never started: neither running, suspended nor finished
        stale = [c for c in self.created
                 if not c.cr_running and c.cr_frame is not None and not c.cr_suspended]
        self.created.clear()
        if stale:
            names = ", ".join(c.__qualname__ for c in stale)
            for c in stale:
                c.close()
            where = f"task {task.name}, in {task.where()}" if task is not None else "start"
            raise ModelError(f"coroutine {names}() created but never awaited ({where})")

    def _record(self, task: Task, op: Op) -> None:
        t = task.index
        vc = self._tvc[t]
        vc[t] += 1
        local = vc[t]
        step = len(self.ev_task)
        name = task.name
        frames = task.frames
        self.trace.append((name, frames[-1] if frames else name, op.label))
        self.ev_task.append(t)
        self.ev_local.append(local)
        self.ev_op.append(op)
        self.t_events[t].append(step)
        key = op.key
        kind = op.kind
        if op.dynamic:
            op.freeze()         # its kind where it runs, for good
        if kind != LOCAL and key >= 0:
            st = self._objs.get(key)
            if st is None:
                st = self._objs[key] = _ObjState()
            if self.detect_races:
                if kind == READ or kind == WRITE or kind == UPDATE or kind == DEC:
                    st.accs.append(self._check_race(task, st, op, vc, local, step))
                else:
                    st.accs.append(None)
            # join the clocks of the earlier events it conflicts with: the last write-like
            # one and those since it of the other commuting classes
            c = CLASS[kind]
            if st.w_vc is not None:
                _join(vc, st.w_vc)
            if c != 0 and st.r_vc is not None:
                _join(vc, st.r_vc)
            if c != 1 and st.u_vc is not None:
                _join(vc, st.u_vc)
            if c != 4 and st.d_vc is not None:
                _join(vc, st.d_vc)
            if c == 0:
                if st.r_vc is None:
                    st.r_vc = list(vc)
                else:
                    _join(st.r_vc, vc)
            elif c == 1:
                if st.u_vc is None:
                    st.u_vc = list(vc)
                else:
                    _join(st.u_vc, vc)
            elif c == 4:
                if st.d_vc is None:
                    st.d_vc = list(vc)
                else:
                    _join(st.d_vc, vc)
            else:
                st.w_vc = list(vc)
                st.r_vc = st.u_vc = st.d_vc = None
            st.events.append(step)
        tv = tuple(vc)
        self.ev_vc.append(tv)
        # event_hash(name, op.label, tv), inlined: this runs on every step
        label = op.label
        sid = _EVENT_IDS.get((name, label))
        if sid is None:
            sid = _event_id(name, label)
        z = hash((sid, tv)) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        self.ev_hash.append(((self.ev_hash[-1] if step else 0) + (z ^ (z >> 31))) & _M64)

    def _check_race(self, task, st, op, vc, local, step) -> Access:
        kind = op.kind
        acc = Access(task.index, local, op.plain, kind != READ, op.label, step,
                     list(task.frames))
        others = []
        if st.w_acc is not None:
            others.append(st.w_acc)
        if kind != READ:
            others.extend(st.r_acc.values())
        if kind != UPDATE:
            others.extend(st.u_acc.values())
        if kind != DEC:
            others.extend(st.d_acc.values())
        for prev in others:
            if prev.task == task.index or not (prev.plain or acc.plain):
                continue
            if len(vc) > prev.task and vc[prev.task] >= prev.local:
                continue  # ordered by some chain of conflicting ops
            key = (prev.label, acc.label)
            if key in self._race_seen:
                continue
            self._race_seen[key] = step
            if self.program is not None:
                self.program.on_data_race(self, prev, acc)
        if kind == WRITE:
            st.w_acc = acc
            st.r_acc = {}
            st.u_acc = {}
            st.d_acc = {}
        elif kind == READ:
            st.r_acc[task.index] = acc
        elif kind == UPDATE:
            st.u_acc[task.index] = acc
        else:
            st.d_acc[task.index] = acc
        return acc

    def take_over(self) -> None:
        """End the bare prefix: take the bookkeeping of the base execution's first
        ``d`` steps (they were the same steps) and record in full from here."""
        base, d = self._base, self._resume_at
        self._base = None
        self.full = True
        if self.nsteps != d:
            raise ModelError(f"prefix re-run took {self.nsteps} steps, expected {d}")
        self.trace = base.trace[:d]
        self.schedule = base.schedule[:d]
        self.ev_task = base.ev_task[:d]
        self.ev_local = base.ev_local[:d]
        self.ev_op = base.ev_op[:d]
        self.ev_vc = ev_vc = base.ev_vc[:d]
        self.ev_hash = base.ev_hash[:d]
        if base.ev_choices:
            self.ev_choices = {k: v for k, v in base.ev_choices.items() if k < d}
        n = len(self.tasks)
        if n > len(base.tasks):
            raise ModelError("prefix re-run spawned tasks its first run did not")
        self.spawn_vc = base.spawn_vc[:n]
        t_events = []
        tvc = []
        for t in range(n):
            evs = base.t_events[t]
            i = bisect_left(evs, d)
            te = evs[:i]
            t_events.append(te)
            tvc.append(list(ev_vc[te[-1]]) if te else list(self.spawn_vc[t]))
        for t in range(n):
            if tvc[t][t] != self._tvc[t][t]:
                raise ModelError(f"prefix re-run diverged: task {self.tasks[t].name} took "
                                 f"{self._tvc[t][t]} steps, {tvc[t][t]} the first time")
        self.t_events = t_events
        self._tvc = tvc
        # objects: the base's states, cut back to step d where it went on past it
        objs = base._objs
        base._objs = {}
        nkeys = len(self._pinned)
        ev_op = base.ev_op
        races = self.detect_races
        seen = set()
        for k in range(d, len(ev_op)):
            key = ev_op[k].key
            if key < 0 or key in seen:
                continue
            seen.add(key)
            st = objs.get(key)
            if st is None:
                continue
            if key >= nkeys or not st.rewind(d, ev_op, base.ev_vc, races):
                del objs[key]
        self._objs = objs
        if base._race_seen:
            self._race_seen = {k: s for k, s in base._race_seen.items() if s < d}

    # -- what strategies and the program may read ------------------------------------

    def clock(self, task: int) -> list[int]:
        """Task ``task``'s vector clock now (its entry for itself: its steps so far).
        Read it, do not change it."""
        return self._tvc[task]

    def steps_taken(self, task: Task) -> int:
        """How many steps ``task`` has taken (also while a prefix re-runs bare)."""
        return self._tvc[task.index][task.index]

    def object_events(self, key: int):
        """The events on object ``key`` so far, oldest first (indices into ``ev_*``)."""
        st = self._objs.get(key)
        return st.events if st is not None else ()

    @property
    def nkeys(self) -> int:
        """How many objects have been numbered so far: object keys are numbered in the
        order the objects are first touched, so keys below this are comparable with
        another execution's that touched the same objects in the same order."""
        return len(self._pinned)

    # -- results -------------------------------------------------------------------

    def report(self, r: Report) -> None:
        if r.step < 0:
            r.step = self.nsteps - 1
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

    def class_hash(self) -> int:
        """A fingerprint of ``class_key()``, kept up to date step by step: the sum mod
        2**64 of a well-mixed hash of each event (its task, label and clock, which also
        fixes its place in its task's sequence; ``event_hash``).  Equal for every
        interleaving of one class, and the same in every process and under any
        PYTHONHASHSEED; two classes collide with probability about 2**-64."""
        return self.ev_hash[-1] if self.ev_hash else 0

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
