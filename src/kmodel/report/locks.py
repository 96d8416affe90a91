"""Lock holds read off a trace's op kinds.

Each locking primitive says what its ops do to which lock: the op's object is the lock
and its kind the engine's (``engine/ops.py``): ``ACQ_R``/``ACQ_W`` take the shared or the
exclusive side, waiting while they cannot; ``TRY_R``/``TRY_W`` try to, without waiting, and
may fail; ``REL_R``/``REL_W`` release a side.  An op on a field, a bit or SRCU's per-reader
slot is an op on an ``(object, ...)`` tuple, not on a lock, whatever its kind -- except
that the release of SRCU's per-reader slot, ``(ssp, "reader", n)``, is where a read
section of ``ssp`` ends (srcu_read_unlock touches only its slot, see
``linux/kernel/rcu/srcu.py``): it closes the task's shared hold of that name.

A hold is an acquire and the same task's next release of the same side of the same lock.
A trylock, whose op does not say whether it won, counts only when a release follows (a
fast path that fails goes on to the slow path's acquire, which the release then closes);
a lock acquired and never released is held to the last step.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, TRY_W

_ACQUIRE = {ACQ_R: True, ACQ_W: False}          # kind -> the shared side?
_TRY = {TRY_R: True, TRY_W: False}
_RELEASE = {REL_R: True, REL_W: False}


@dataclass(frozen=True)
class LockStep:
    """What one step did to a lock: the op's kind, the lock (its number in the execution,
    and its name as the kernel spells it: "&kvm->mn_invalidate_lock")."""
    kind: int
    key: int
    name: str


def lock_step(op) -> LockStep | None:
    """The lock ``op`` acquires, tries or releases; None for any other op.  The end of
    an SRCU read section names its srcu_struct but not its key (-1)."""
    obj = op.obj
    if isinstance(obj, tuple):
        if op.kind == REL_W and len(obj) == 3 and obj[1] == "reader":
            return LockStep(REL_R, -1, getattr(obj[0], "name", type(obj[0]).__name__))
        return None
    if not (op.kind in _ACQUIRE or op.kind in _TRY or op.kind in _RELEASE):
        return None
    return LockStep(op.kind, op.key, getattr(op.obj, "name", type(op.obj).__name__))


@dataclass
class LockHold:
    task: str
    lock: str            # the lock's name: "&kvm->mn_invalidate_lock"
    how: str             # the acquiring op: "spin_lock(&kvm->mn_invalidate_lock)"
    start: int           # step of the acquire
    end: int             # step of the release; the last step if never released
    released: bool = True
    shared: bool = False  # the shared side (down_read, read_lock, srcu_read_lock)

    def covers(self, step: int) -> bool:
        return self.start <= step <= self.end


def lock_holds(trace: list) -> list[LockHold]:
    """Every hold in the trace, ordered by its acquire step.  ``trace``: the replayed
    execution's steps, (task, function, op label, LockStep or None)."""
    open_: dict[tuple[str, int, bool], list[tuple[int, bool, str, str]]] = {}
    holds: list[LockHold] = []
    last = len(trace) - 1
    for step, entry in enumerate(trace):
        ls = entry[3] if len(entry) > 3 else None
        if ls is None:
            continue
        task, label = entry[0], entry[2]
        if ls.kind in _RELEASE:
            shared = _RELEASE[ls.kind]
            key = ls.key
            if key < 0:         # known by name only: the task's latest such hold
                mine = [(s[-1][0], k) for (t, k, sh), s in open_.items()
                        if t == task and sh == shared and s and s[-1][3] == ls.name]
                key = max(mine)[1] if mine else key
            stack = open_.get((task, key, shared))
            if stack:
                start, _try, how, name = stack.pop()
                holds.append(LockHold(task, name, how, start, step,
                                      shared=_RELEASE[ls.kind]))
            continue
        is_try = ls.kind in _TRY
        shared = _TRY[ls.kind] if is_try else _ACQUIRE[ls.kind]
        open_.setdefault((task, ls.key, shared), []).append((step, is_try, label, ls.name))
    for (task, _key, shared), stack in open_.items():
        for start, is_try, how, name in stack:
            if not is_try:
                holds.append(LockHold(task, name, how, start, last, released=False,
                                      shared=shared))
    holds.sort(key=lambda h: (h.start, h.task))
    return holds

