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
waiters in TASK_UNINTERRUPTIBLE, or TASK_KILLABLE for down_read_killable and
down_write_killable: the caller says which (``how``: "rtlock", "D", "K").  A killable
waiter ends its wait on a fatal signal with -EINTR: a reader blocked on the rtmutex
leaves its wait list (rt_mutex_slowlock_block -> remove_waiter); a writer leaves the
rtmutex's wait list, or, once it holds the rtmutex and waits for the readers, gives the
lock back (__rwbase_write_unlock: READER_BIAS restored, the rtmutex to its next waiter).
Killable waits use lock_wait.py's wait loop (lock_wait_killable): the grant or the last
reader's exit wakes the sleeper.

Simplified: rtmutex priority ordering is FIFO (the model's tasks have one priority), and
the rtmutex is handed to its first waiter directly.
"""

from __future__ import annotations

from ....engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, TRY_W, WRITE, Op
from ..core import kfunc
from ..sched import TASK_KILLABLE, Blocked, current
from .lock_wait import EINTR, lock_waiter, lock_wait_killable, queue_killable, wake_up_q


def rwbase_release_rtmutex(rwb) -> list:
    """rwbase_rtmutex_unlock as __rwbase_write_unlock ends: READER_BIAS is back, and the
    rtmutex goes to its waiters in order -- each reader takes the read lock and drops the
    rtmutex again (__rwbase_read_lock), the first writer keeps it.  Returns the waiters
    granted (the wake_q)."""
    rwb.rtmutex_owner = None
    woken = []
    while rwb.waiters:
        w = rwb.waiters.pop(0)
        w.granted = True
        woken.append(w)
        if w.write:
            rwb.rtmutex_owner = w.task
            break
        rwb.readers += 1
    return woken


async def rwbase_read_trylock(rwb, label: str) -> bool:
    """rwbase_read_trylock: succeeds while READER_BIAS is set (no writer has the
    rtmutex)."""
    await Op(rwb, TRY_R, label)
    if rwb.rtmutex_owner is not None:
        return False
    rwb.readers += 1
    return True


@kfunc("kernel/locking/rwbase_rt.c", primitive=True)
async def rwbase_read_lock(rwb, label: str, how: str) -> int:
    """rwbase_read_lock: the fast path, else __rwbase_read_lock: block on the rtmutex the
    writer holds, take the read lock once it is handed over.  Killable (``how`` "K"):
    the attempt is an always-enabled step that can block behind a writer holding the
    lock, and a fatal signal ends the wait with -EINTR."""
    if how == "K":
        await Op(rwb, TRY_R, label)
    else:
        # as in rwsem.py: the reader gets this far once no writer holds the lock
        await Blocked(rwb, ACQ_R, label, lambda: rwb.owner is None, how)
    if rwb.rtmutex_owner is None:                   # rwbase_read_trylock
        rwb.readers += 1
        return 0
    return await __rwbase_read_lock(rwb, how)


@kfunc("kernel/locking/rwbase_rt.c", primitive=True)
async def __rwbase_read_lock(rwb, how: str) -> int:
    """__rwbase_read_lock: rwbase_rtmutex_slowlock_locked(rtm, state): wait for the
    rtmutex; on success take the read lock and drop the rtmutex (done by the waker
    here); -EINTR from a killable wait (the waiter removed from the rtmutex, which stays
    with its owner: nobody else to wake)."""
    if how != "K":
        w = lock_waiter(current(), write=False)
        rwb.waiters.append(w)
        await Blocked(rwb, ACQ_R, f"__rwbase_read_lock({rwb.name}) [blocked on rtmutex]",
                      lambda: w.granted, how)
        return 0
    w = queue_killable(rwb, write=False)
    if await lock_wait_killable(rwb, w, f"__rwbase_read_lock({rwb.name}) [blocked on rtmutex]"):
        w.waiting = False
        return 0
    await Op(rwb, WRITE, f"remove_waiter({rwb.name}.rtmutex) [wait_lock]")
    w.waiting = False
    if w.granted:
        return 0
    rwb.waiters.remove(w)
    return EINTR


async def rwbase_read_unlock(rwb, label: str) -> None:
    """rwbase_read_unlock: the last reader wakes the writer waiting for readers (the
    writer's wait below becomes possible)."""
    await Op(rwb, REL_R, label)
    rwb.readers -= 1
    writer = getattr(rwb, "write_waiter", None)
    if rwb.readers == 0 and writer is not None:     # rt_mutex_wake_q_add_task(owner)
        await wake_up_q([writer])


@kfunc("kernel/locking/rwbase_rt.c", primitive=True)
async def rwbase_write_lock(rwb, label: str, how: str) -> int:
    """rwbase_write_lock: take the rtmutex (waiting behind its earlier waiters), remove
    READER_BIAS, then wait until no reader is inside and mark it write-locked."""
    if how == "K":
        return await rwbase_write_lock_killable(rwb, label)
    await Op(rwb, TRY_W, label)
    if rwb.rtmutex_owner is None and not rwb.waiters:
        rwb.rtmutex_owner = current()
        if rwb.readers == 0:                         # __rwbase_write_trylock
            rwb.owner = current()
            return 0
        w = None
    else:
        w = lock_waiter(current(), write=True)
        rwb.waiters.append(w)
    await Blocked(rwb, ACQ_W, f"rwbase_write_lock({rwb.name}) [waiting]",
                  lambda: (w is None or w.granted) and rwb.readers == 0, how)
    rwb.owner = current()
    return 0


async def rwbase_write_lock_killable(rwb, label: str) -> int:
    """rwbase_write_lock(rwb, TASK_KILLABLE): rwbase_rtmutex_lock_state(rtm,
    TASK_KILLABLE) (-EINTR while waiting for the rtmutex), READER_BIAS removed, then the
    killable wait for the readers inside to leave; a fatal signal there gives the lock
    back (__rwbase_write_unlock: the rtmutex to its next waiter) and returns -EINTR."""
    ts = current()
    await Op(rwb, TRY_W, label)
    if rwb.rtmutex_owner is None and not rwb.waiters:
        rwb.rtmutex_owner = ts
    else:
        w = queue_killable(rwb, write=True)
        if not await lock_wait_killable(rwb, w, f"rwbase_write_lock({rwb.name}) [rtmutex]"):
            await Op(rwb, WRITE,
                     f"remove_waiter({rwb.name}.rtmutex) [wait_lock]")
            w.waiting = False
            if not w.granted:
                rwb.waiters.remove(w)
                return EINTR
        w.waiting = False
    if rwb.readers == 0:                             # __rwbase_write_trylock
        rwb.owner = ts
        return 0
    rw = rwb.write_waiter = lock_waiter(ts, write=True, killable=True)
    ts.state = TASK_KILLABLE                         # rwbase_set_and_save_current_state
    ok = await lock_wait_killable(rwb, rw, f"rwbase_write_lock({rwb.name}) [waiting]",
                                  lambda: rwb.readers == 0)
    if not ok:
        await Op(rwb, WRITE, f"__rwbase_write_trylock({rwb.name}) [wait_lock]")
        ok = rwb.readers == 0
    rw.waiting = False
    rwb.write_waiter = None
    if ok:
        rwb.owner = ts
        return 0
    await wake_up_q(rwbase_release_rtmutex(rwb))     # __rwbase_write_unlock
    return EINTR


async def rwbase_write_unlock(rwb, label: str) -> None:
    await Op(rwb, REL_W, label)
    rwb.owner = None
    await wake_up_q(rwbase_release_rtmutex(rwb))

