"""kernel/locking/rwsem.c: struct rw_semaphore, as mm->mmap_lock uses it
(include/linux/mmap_lock.h wraps these as mmap_read_lock, mmap_read_trylock, ...).
Waiters sleep in TASK_UNINTERRUPTIBLE (TASK_KILLABLE for the _killable forms)."""

from __future__ import annotations

from ....engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, WRITE, Op
from ..core import kernel, kfunc
from .lockdep import LD_WAIT_SLEEP
from ..sched import Blocked, current, might_sleep


class rw_semaphore:
    lock_type = "rw_semaphore"
    wait_type_inner = LD_WAIT_SLEEP      # __RWSEM_DEP_MAP_INIT

    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.owner = None
        self.readers = 0

    def no_writer(self) -> bool:
        return self.owner is None

    def idle(self) -> bool:
        return self.owner is None and self.readers == 0


@kfunc("kernel/locking/rwsem.c")
async def down_read(sem: rw_semaphore, killable: bool = False) -> None:
    might_sleep("kernel/locking/rwsem.c", 1527)
    kernel().lockdep.acquire(sem.name, 1, sem)
    await Blocked(sem, ACQ_R, f"down_read({sem.name})", sem.no_writer, "D")
    sem.readers += 1


@kfunc("kernel/locking/rwsem.c")
async def down_read_trylock(sem: rw_semaphore) -> bool:
    await Op(sem, TRY_R, f"down_read_trylock({sem.name})")
    if sem.owner is not None:
        return False
    kernel().lockdep.acquire(sem.name, 1, sem, trylock=True)
    sem.readers += 1
    return True


@kfunc("kernel/locking/rwsem.c")
async def up_read(sem: rw_semaphore) -> None:
    kernel().lockdep.release(sem.name, sem)
    await Op(sem, REL_R, f"up_read({sem.name})")
    sem.readers -= 1


@kfunc("kernel/locking/rwsem.c")
async def down_write(sem: rw_semaphore) -> None:
    might_sleep("kernel/locking/rwsem.c", 1580)
    kernel().lockdep.acquire(sem.name, 0, sem)
    await Blocked(sem, ACQ_W, f"down_write({sem.name})", sem.idle, "D")
    sem.owner = current()


@kfunc("kernel/locking/rwsem.c")
async def up_write(sem: rw_semaphore) -> None:
    kernel().lockdep.release(sem.name, sem)
    await Op(sem, REL_W, f"up_write({sem.name})")
    sem.owner = None


@kfunc("kernel/locking/rwsem.c")
async def downgrade_write(sem: rw_semaphore) -> None:
    """rwsem.c: downgrade_write: the writer becomes a reader without letting another
    writer in between."""
    await Op(sem, WRITE, f"downgrade_write({sem.name})")
    sem.owner = None
    sem.readers += 1
    held = current().held_locks
    for h in held:
        if h.lock is sem:
            h.read = 1
