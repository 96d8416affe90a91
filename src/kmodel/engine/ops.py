"""Visible operations: what a task hands the scheduler when it awaits.

A task is an ``async def`` coroutine.  Plain Python between two awaits is invisible to
other tasks and runs atomically; every operation another task could observe or be blocked
by is awaited as an ``Op``.  The op names the object it touches and how, which is all the
engine needs to know about dependency between tasks:

- two ops conflict when they touch the same object and at least one of them is not
  read-like;
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

KIND_NAMES = ("read", "write", "acquire-shared", "acquire", "release-shared", "release",
              "trylock-shared", "trylock", "local")

_READ_LIKE = frozenset((READ, ACQ_R, REL_R, TRY_R))
_ACQUIRES = frozenset((ACQ_R, ACQ_W))
_RELEASES = frozenset((REL_R, REL_W))


class Op:
    """One visible operation.  ``label`` is what a trace shows ("spin_lock(&kvm->mmu_lock)");
    ``plain`` marks an unannotated access for the data-race detector."""

    __slots__ = ("obj", "kind", "label", "plain", "key")

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
    """Whether two ops do not commute: same object, not both read-like."""
    if a.key != b.key or a.key < 0:
        return False
    return not (a.kind in _READ_LIKE and b.kind in _READ_LIKE)


def co_enabled(a: Op, b: Op) -> bool:
    """Whether the two ops could both be enabled in one state.  Only acquire/release of one
    lock are known never to be: whoever may release holds the lock the other waits for."""
    return not ((a.kind in _ACQUIRES and b.kind in _RELEASES)
                or (a.kind in _RELEASES and b.kind in _ACQUIRES))


def read_like(kind: int) -> bool:
    return kind in _READ_LIKE
