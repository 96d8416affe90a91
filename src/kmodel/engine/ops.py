"""Visible operations: what a task hands the scheduler when it awaits.

A task is an ``async def`` coroutine.  Plain Python between two awaits is invisible to
other tasks and runs atomically; every operation another task could observe or be blocked
by is awaited as an ``Op``.  The op names the object it touches and how, which is all the
engine needs to know about dependency between tasks:

- two ops conflict when they touch the same object and at least one of them is not
  read-like -- except two UPDATEs, which commute (atomic_inc and atomic_inc, set_bit and
  set_bit of one bit: either order gives the same state and neither returns a value),
  and two DECs (see ``DecAndTest``);
- an acquire and a release of the same lock are never enabled at the same time (the
  releaser holds the lock the acquirer waits for), which lets DPOR look past a release to
  the acquire that really raced.
"""

from __future__ import annotations

# Kinds of access.  Small ints: they are compared on every step.
READ = 0       # plain or marked read of a shared field
WRITE = 1      # plain or marked write (or read-modify-write) of a shared field
ACQ_R = 2      # acquire the shared side of a lock (blocks while a writer holds it)
ACQ_W = 3      # acquire a lock exclusively (blocks while anyone holds it)
REL_R = 4      # release the shared side
REL_W = 5      # release the exclusive side
TRY_R = 6      # trylock, shared side: never blocks, may fail
TRY_W = 7      # trylock, exclusive side
LOCAL = 8      # touches nothing shared (a task's start, a timeout expiring)
UPDATE = 9     # a read-modify-write that returns nothing and commutes with other UPDATEs
               # of the same object (atomic_inc, set_bit): conflicts with reads and writes
DEC = 10       # a decrement-and-test that does not reach zero here (``DecAndTest``):
               # commutes with other DECs of the object, conflicts with everything else

KIND_NAMES = ("read", "write", "acquire-shared", "acquire", "release-shared", "release",
              "trylock-shared", "trylock", "local", "update", "decrement")
NKINDS = len(KIND_NAMES)

_READ_LIKE = frozenset((READ, ACQ_R, REL_R, TRY_R))
_ACQUIRES = frozenset((ACQ_R, ACQ_W))
_RELEASES = frozenset((REL_R, REL_W))
# Kinds that conflict with every other access of their object: everything before them on
# the object happens-before them.
WRITE_LIKE = frozenset((WRITE, ACQ_W, REL_W, TRY_W))

# CLASS[kind]: 0 read-like, 1 commutative update, 2 write-like, 3 local (never conflicts),
# 4 decrement that does not reach zero
CLASS = tuple(0 if k in _READ_LIKE else 1 if k == UPDATE else 3 if k == LOCAL else
              4 if k == DEC else 2 for k in range(NKINDS))


def _conflict_table(cls):
    """[a][b]: kinds a, b on one object conflict: neither local, and not two of one
    commuting class (read-like, UPDATE, DEC)."""
    return tuple(tuple(cls[a] != 3 and cls[b] != 3 and
                       not (cls[a] == cls[b] and cls[a] in (0, 1, 4))
                       for b in range(NKINDS)) for a in range(NKINDS))


# CONFLICT[a][b] for kinds a, b on the same object, each kind as it was where its op ran
# (or, for an op about to run, where it runs)
CONFLICT = _conflict_table(CLASS)
# MAY_CONFLICT[a][b]: the same for ops whose kinds may have been taken in another state
# than the one where they are compared (sleep sets, wakeup sequences): a DEC counts as a
# write there, since whether a decrement reaches zero depends on where it runs
MAY_CONFLICT = _conflict_table(tuple(2 if c == 4 else c for c in CLASS))
# NOT_CO_ENABLED[a][b]: an acquire and a release of one lock
NOT_CO_ENABLED = tuple(tuple((a in _ACQUIRES and b in _RELEASES) or
                             (a in _RELEASES and b in _ACQUIRES)
                             for b in range(NKINDS)) for a in range(NKINDS))


class Op:
    """One visible operation.  ``label`` is what a trace shows ("spin_lock(&kvm->mmu_lock)");
    ``plain`` marks an unannotated access for the data-race detector."""

    __slots__ = ("obj", "kind", "label", "plain", "key")
    dynamic = False         # True: ``kind`` depends on the state (``DecAndTest``)

    def __init__(self, obj, kind: int, label: str, plain: bool = False):
        self.obj = obj
        self.kind = kind
        self.label = label
        self.plain = plain
        # The execution numbers objects in the order their ops first become pending, so
        # that an op remembered from an earlier execution compares equal to its re-run.
        self.key = -1

    def enabled(self) -> bool:
        return True

    def __await__(self):
        return (yield self)

    def __repr__(self):
        return f"<{KIND_NAMES[self.kind]} {self.label}>"


class Wait(Op):
    """An op that can only happen once ``ready()`` holds: a contended lock, a sleep that
    waits for a wake-up, a grace period that waits for readers."""

    __slots__ = ("ready",)

    def __init__(self, obj, kind: int, label: str, ready):
        super().__init__(obj, kind, label)
        self.ready = ready

    def enabled(self) -> bool:
        return self.ready()


class DecAndTest(Op):
    """atomic_dec_and_test and its kin (refcount_dec_and_test, atomic_long_dec_and_test):
    its kind is DEC where the decrement does not reach zero and WRITE where it does.
    Two decrements that both stay above zero commute (either order: the same count,
    both return false); one that reaches zero does not commute with another (which one
    returns true depends on the order).  So the kind depends on the state: ``count()``
    returns the value before the decrement.  The execution fixes the kind when the op
    runs (``freeze``); until then it is the kind the op would have if it ran now.  (A
    conditional independence, Katz and Peled 1992: DPOR compares an event's kind with
    the kind of an op about to run, each taken where it runs; sleep sets and wakeup
    sequences, which compare kinds taken in other states, count a DEC as a write.)"""

    __slots__ = ("count", "frozen")
    dynamic = True

    def __init__(self, obj, label: str, count):
        self.count = count
        self.frozen = -1
        super().__init__(obj, WRITE, label)

    @property
    def kind(self) -> int:
        if self.frozen >= 0:
            return self.frozen
        return DEC if self.count() > 1 else WRITE

    @kind.setter
    def kind(self, _value) -> None:
        pass                # the kind is the state's; Op.__init__ sets a placeholder

    def freeze(self) -> None:
        self.frozen = self.kind


class Choice:
    """A nondeterministic choice that is not scheduling (an allocation that may fail).
    Awaiting it returns an int in ``range(n)``; strategies explore every value."""

    __slots__ = ("n", "label")

    def __init__(self, n: int, label: str):
        if n < 1:
            raise ValueError("a choice needs at least one alternative")
        self.n = n
        self.label = label

    def __await__(self):
        return (yield self)


def conflict(a: Op, b: Op) -> bool:
    """Whether two ops do not commute: same object, not both read-like, not two UPDATEs,
    not two DECs (each kind taken where its op runs)."""
    if a.key != b.key or a.key < 0:
        return False
    return CONFLICT[a.kind][b.kind]


def may_conflict(a: Op, b: Op) -> bool:
    """``conflict`` for ops whose kinds may come from other states than the one compared
    in (a sleeping op and an executed one): a DEC counts as a write."""
    if a.key != b.key or a.key < 0:
        return False
    return MAY_CONFLICT[a.kind][b.kind]


def co_enabled(a: Op, b: Op) -> bool:
    """Whether the two ops could both be enabled in one state.  Only acquire/release of one
    lock are known never to be: whoever may release holds the lock the other waits for."""
    return not NOT_CO_ENABLED[a.kind][b.kind]


def read_like(kind: int) -> bool:
    return kind in _READ_LIKE
