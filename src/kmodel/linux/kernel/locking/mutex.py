"""kernel/locking/mutex.c: struct mutex.  A sleeping lock on every kernel; a waiter
sleeps in TASK_UNINTERRUPTIBLE, so a mutex that is never released leaves hung tasks."""

from __future__ import annotations

from ....engine import ACQ_W, REL_W, Op
from ..core import kernel, kfunc
from .lockdep import LD_WAIT_SLEEP
from ..sched import Blocked, current, might_sleep


class mutex:
    lock_type = "mutex"
    wait_type_inner = LD_WAIT_SLEEP      # __DEP_MAP_MUTEX_INITIALIZER

    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.owner = None

    def free(self) -> bool:
        return self.owner is None


@kfunc("kernel/locking/mutex.c")
async def mutex_lock(lock: mutex) -> None:
    """mutex.c: mutex_lock: might_sleep(), lockdep, then sleep uninterruptibly until
    the owner releases it."""
    might_sleep("kernel/locking/mutex.c", 283)
    kernel().lockdep.acquire(lock.name, 0, lock)
    await Blocked(lock, ACQ_W, f"mutex_lock({lock.name})", lock.free, "D")
    lock.owner = current()


@kfunc("kernel/locking/mutex.c")
async def mutex_unlock(lock: mutex) -> None:
    kernel().lockdep.release(lock.name, lock)
    await Op(lock, REL_W, f"mutex_unlock({lock.name})")
    lock.owner = None
