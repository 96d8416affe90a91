"""kernel/locking/rwbase_rt.c: the PREEMPT_RT reader/writer lock under both rwlock_t
(spinlock_rt.c: rt_read_lock, rt_write_lock) and rw_semaphore (rwsem.c with
CONFIG_PREEMPT_RT).

A writer first takes the rtmutex, then removes READER_BIAS -- from then on every new
reader fails its fast path and blocks on the rtmutex -- and waits for the readers inside
to leave.  So a writer waiting for readers blocks new readers, including a reader that
already holds the lock and takes it again (the 2023 "Mitigate indefinite writer
starvation" change removed the old exception for readers while the writer waited).  When
the writer unlocks, the rtmutex goes to its first waiter: a reader takes its read lock
and passes the rtmutex on at once; a writer keeps it and waits for readers.

rwlock_t waiters sleep in TASK_RTLOCK_WAIT (invisible to khungtaskd); rw_semaphore
waiters in TASK_UNINTERRUPTIBLE: the caller says which (``how``).

Simplified: rtmutex priority ordering is FIFO (the model's tasks have one priority), and
the rtmutex is handed to its first waiter directly.
"""

from __future__ import annotations

from ....engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, TRY_W, Op
from ..core import kfunc
from ..sched import Blocked, current
from .rwsem import lock_waiter


def rwbase_release_rtmutex(rwb) -> None:
    """rwbase_rtmutex_unlock as __rwbase_write_unlock ends: READER_BIAS is back, and the
    rtmutex goes to its waiters in order -- each reader takes the read lock and drops the
    rtmutex again (__rwbase_read_lock), the first writer keeps it."""
    rwb.rtmutex_owner = None
    while rwb.waiters:
        w = rwb.waiters.pop(0)
        w.granted = True
        if w.write:
            rwb.rtmutex_owner = w.task
            return
        rwb.readers += 1


async def rwbase_read_trylock(rwb, label: str) -> bool:
    """rwbase_read_trylock: succeeds while READER_BIAS is set (no writer has the
    rtmutex)."""
    await Op(rwb, TRY_R, label)
    if rwb.rtmutex_owner is not None:
        return False
    rwb.readers += 1
    return True


@kfunc("kernel/locking/rwbase_rt.c")
async def rwbase_read_lock(rwb, label: str, how: str) -> None:
    """rwbase_read_lock: the fast path, else __rwbase_read_lock: block on the rtmutex the
    writer holds, take the read lock once it is handed over."""
    # as in rwsem.py: the reader gets this far once no writer holds the lock
    await Blocked(rwb, ACQ_R, label, lambda: rwb.owner is None, how)
    if rwb.rtmutex_owner is None:                   # rwbase_read_trylock
        rwb.readers += 1
        return
    await __rwbase_read_lock(rwb, how)


@kfunc("kernel/locking/rwbase_rt.c")
async def __rwbase_read_lock(rwb, how: str) -> None:
    w = lock_waiter(current(), write=False)
    rwb.waiters.append(w)
    await Blocked(rwb, ACQ_R, f"__rwbase_read_lock({rwb.name}) [blocked on rtmutex]",
                  lambda: w.granted, how)


async def rwbase_read_unlock(rwb, label: str) -> None:
    """rwbase_read_unlock: the last reader wakes the writer waiting for readers (the
    writer's wait below becomes possible)."""
    await Op(rwb, REL_R, label)
    rwb.readers -= 1


@kfunc("kernel/locking/rwbase_rt.c")
async def rwbase_write_lock(rwb, label: str, how: str) -> None:
    """rwbase_write_lock: take the rtmutex (waiting behind its earlier waiters), remove
    READER_BIAS, then wait until no reader is inside and mark it write-locked."""
    await Op(rwb, TRY_W, label)
    if rwb.rtmutex_owner is None and not rwb.waiters:
        rwb.rtmutex_owner = current()
        if rwb.readers == 0:                         # __rwbase_write_trylock
            rwb.owner = current()
            return
        w = None
    else:
        w = lock_waiter(current(), write=True)
        rwb.waiters.append(w)
    await Blocked(rwb, ACQ_W, f"rwbase_write_lock({rwb.name}) [waiting]",
                  lambda: (w is None or w.granted) and rwb.readers == 0, how)
    rwb.owner = current()


async def rwbase_write_unlock(rwb, label: str) -> None:
    await Op(rwb, REL_W, label)
    rwb.owner = None
    rwbase_release_rtmutex(rwb)
