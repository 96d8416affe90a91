"""kernel/locking/rwsem.c: struct rw_semaphore, as mm->mmap_lock uses it
(include/linux/mmap_lock.h wraps these as mmap_read_lock, mmap_read_trylock, ...).

Without PREEMPT_RT (rwsem.c proper) the lock is fair to writers: a reader whose fast path
sees waiters (RWSEM_READ_FAILED_MASK has RWSEM_FLAG_WAITERS) goes to
rwsem_down_read_slowpath, and one that finds the lock owned by other readers queues
behind the waiting writer -- so ``down_read; (another task's down_write waits);
down_read`` deadlocks.  A release wakes the waiters (rwsem_wake -> rwsem_mark_wake): a
writer at the head of the queue, or every queued reader when a reader is at the head.

With PREEMPT_RT the same API is rwbase_rt (rwbase_rt.py), which is writer-preferring in
its own way: a writer takes the rtmutex first and from then on new readers block on it.

Waiters sleep in TASK_UNINTERRUPTIBLE, except those of down_read_killable and
down_write_killable (mmap_read_lock_killable, mmap_write_lock_killable), which sleep in
TASK_KILLABLE: a fatal signal ends the wait with -EINTR, the waiter leaving the queue
(the out_nolock path; a waiting writer that leaves from the head lets the readers queued
behind it go, rwsem_del_wake_waiter).  A killable wait is the kernel's wait loop
(lock_wait.py's lock_wait_killable): the task sleeps on its own state, and whoever grants it the lock
wakes it (wake_up_q) -- so a grant and a SIGKILL are two events on the sleeper that the
search orders both ways.

Simplified: a release hands the lock to the woken waiters directly, as it is once the
first waiter has set RWSEM_FLAG_HANDOFF: the window in which a newcomer could steal the
lock from a woken but not yet running waiter, and optimistic spinning, are not modelled
(each only reorders who gets the lock first among orders the model already explores or
delays a waiter).  The fast path and the queueing of a task that fails it are one step.
A reader gets as far as its fast path only once no writer holds the lock (it does not
queue behind a holding writer: it arrives after the release, an order the kernel has
too); a writer tries at once -- an always-enabled trylock-kind op -- because a wait whose
kind is not an acquire, or an acquire-kind wait enabled while readers hold the lock,
hides races from this engine's DPOR.
"""

from __future__ import annotations

from ....engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, TRY_W, WRITE, Op
from ..core import kernel, kfunc
from ..sched import TASK_KILLABLE, TASK_UNINTERRUPTIBLE, Blocked, current, might_sleep
from .lock_wait import EINTR, lock_waiter, lock_wait_killable, queue_killable, wake_up_q
from .lockdep import LD_WAIT_SLEEP
from .rwbase_rt import rwbase_read_lock, rwbase_read_trylock, rwbase_read_unlock, \
    rwbase_release_rtmutex, rwbase_write_lock, rwbase_write_unlock


class rw_semaphore:
    lock_type = "rw_semaphore"
    wait_type_inner = LD_WAIT_SLEEP      # __RWSEM_DEP_MAP_INIT

    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.owner = None                # the writer (RWSEM_WRITER_LOCKED)
        self.readers = 0                 # readers holding it
        self.waiters: list[lock_waiter] = []   # sem->wait_list, oldest first
        self.rtmutex_owner = None        # PREEMPT_RT: the writer holding rwbase's rtmutex
        self.write_waiter = None         # PREEMPT_RT: a killable writer waiting for readers

    def no_writer(self) -> bool:
        return self.owner is None

    def idle(self) -> bool:
        return self.owner is None and self.readers == 0


def _queue(sem, write: bool) -> lock_waiter:
    w = lock_waiter(current(), write)
    sem.waiters.append(w)
    return w


def rwsem_mark_wake(sem: rw_semaphore) -> list:
    """rwsem.c: rwsem_mark_wake (from rwsem_wake and rwsem_downgrade_wake): a writer at
    the head of the queue gets the lock once it is free; a reader at the head gets it
    together with every other queued reader (up to MAX_READERS_WAKEUP, which the model
    never reaches), writers staying queued.  Returns the waiters granted: the wake_q
    the caller wakes (wake_up_q) once it is done with the lock."""
    if not sem.waiters or sem.owner is not None:
        return []
    first = sem.waiters[0]
    if first.write:
        if sem.readers == 0:
            sem.waiters.pop(0)
            sem.owner = first.task
            first.granted = True
            return [first]
        return []
    woken = [w for w in sem.waiters if not w.write]
    for w in woken:
        sem.waiters.remove(w)
        sem.readers += 1
        w.granted = True
    return woken


def rwsem_del_wake_waiter(sem: rw_semaphore, w: lock_waiter) -> list:
    """rwsem.c: rwsem_del_wake_waiter (out_nolock of both slow paths, wait_lock held):
    remove the waiter; if it was the first and others remain, rwsem_mark_wake them --
    a writer that gives up at the head lets the readers queued behind it in."""
    first = sem.waiters[0] is w
    sem.waiters.remove(w)
    w.waiting = False
    if sem.waiters and first:
        return rwsem_mark_wake(sem)
    return []


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def down_read(sem: rw_semaphore, killable: bool = False) -> None:
    """rwsem.c: down_read: might_sleep(), lockdep's rwsem_acquire_read (a non-recursive
    read), then __down_read."""
    might_sleep("kernel/locking/rwsem.c", 1527)
    kernel().lockdep.acquire(sem.name, 1, sem)
    if kernel().config.PREEMPT_RT:
        await rwbase_read_lock(sem, f"down_read({sem.name})", "D")
        return
    # A reader can only get as far as its fast path while no writer holds the lock (the
    # model does not let it queue behind a holding writer: it arrives after the release,
    # one of the orders the kernel has too); a waiting writer sends it to the slow path.
    await Blocked(sem, ACQ_R, f"down_read({sem.name})", sem.no_writer, "D")
    if not sem.waiters:                              # rwsem_read_trylock
        sem.readers += 1
        return
    await rwsem_down_read_slowpath(sem)


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def rwsem_down_read_slowpath(sem: rw_semaphore, state: int = TASK_UNINTERRUPTIBLE) -> int:
    """rwsem.c: rwsem_down_read_slowpath: queue -- behind a waiting writer too -- and
    sleep until rwsem_mark_wake grants the read lock.  (Its lock stealing, of a lock with
    no holder, never applies here: a release hands a free lock to the waiters at once.)
    In TASK_KILLABLE the queueing is part of the caller's step (under wait_lock) and the
    wait is the killable loop; on a fatal signal, out_nolock: under wait_lock, a grant
    that came meanwhile is kept (waiter.task already NULL), else rwsem_del_wake_waiter
    and -EINTR."""
    if state != TASK_KILLABLE:
        w = _queue(sem, write=False)
        await Blocked(sem, ACQ_R, f"rwsem_down_read_slowpath({sem.name}) [queued]",
                      lambda: w.granted, "D")
        return 0
    w = queue_killable(sem, write=False)
    if await lock_wait_killable(sem, w, f"rwsem_down_read_slowpath({sem.name})"):
        w.waiting = False
        return 0
    return await rwsem_out_nolock(sem, w)


async def rwsem_out_nolock(sem: rw_semaphore, w: lock_waiter) -> int:
    """The out_nolock label of both slow paths: take wait_lock; a waiter granted in the
    meantime keeps the lock, any other leaves the queue (rwsem_del_wake_waiter, its
    wake_q woken after wait_lock is dropped) with -EINTR."""
    await Op(sem, WRITE, f"rwsem_del_wake_waiter({sem.name}) [out_nolock, wait_lock]")
    if w.granted:
        w.waiting = False
        return 0
    await wake_up_q(rwsem_del_wake_waiter(sem, w))
    return EINTR


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def down_read_killable(sem: rw_semaphore) -> int:
    """rwsem.c: down_read_killable (mmap_read_lock_killable): lockdep's acquire, then
    __down_read_common(sem, TASK_KILLABLE): the fast path (rwsem_read_trylock, which
    fails on a writer holding the lock and on waiters), else rwsem_down_read_slowpath
    in TASK_KILLABLE; -EINTR from it undoes lockdep's acquire (rwsem_release).  A free
    lock is taken even with a signal pending (the fast path does not look).  With
    PREEMPT_RT, rwbase_read_lock(TASK_KILLABLE).  Unlike down_read here, the killable
    reader's attempt is an always-enabled step that can queue behind a writer holding
    the lock, so that a SIGKILL can end that wait too."""
    might_sleep("kernel/locking/rwsem.c", 1542)
    kernel().lockdep.acquire(sem.name, 1, sem)
    if kernel().config.PREEMPT_RT:
        ret = await rwbase_read_lock(sem, f"down_read_killable({sem.name})", "K")
    else:
        await Op(sem, TRY_R, f"down_read_killable({sem.name})")
        if sem.owner is None and not sem.waiters:        # rwsem_read_trylock
            sem.readers += 1
            return 0
        ret = await rwsem_down_read_slowpath(sem, TASK_KILLABLE)
    if ret:
        kernel().lockdep.release(sem.name, sem)
    return ret


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def down_read_trylock(sem: rw_semaphore) -> bool:
    """rwsem.c: down_read_trylock -> __down_read_trylock: fails on a writer and on
    waiters (RWSEM_READ_FAILED_MASK)."""
    if kernel().config.PREEMPT_RT:
        if not await rwbase_read_trylock(sem, f"down_read_trylock({sem.name})"):
            return False
        kernel().lockdep.acquire(sem.name, 1, sem, trylock=True)
        return True
    await Op(sem, TRY_R, f"down_read_trylock({sem.name})")
    if sem.owner is not None or sem.waiters:
        return False
    kernel().lockdep.acquire(sem.name, 1, sem, trylock=True)
    sem.readers += 1
    return True


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def up_read(sem: rw_semaphore) -> None:
    """rwsem.c: up_read -> __up_read: the last reader out wakes the waiters."""
    kernel().lockdep.release(sem.name, sem)
    if kernel().config.PREEMPT_RT:
        await rwbase_read_unlock(sem, f"up_read({sem.name})")
        return
    await Op(sem, REL_R, f"up_read({sem.name})")
    sem.readers -= 1
    if sem.readers == 0:
        await wake_up_q(rwsem_mark_wake(sem))


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def down_write(sem: rw_semaphore) -> None:
    """rwsem.c: down_write: might_sleep(), lockdep, then __down_write: the fast path
    needs the count to be 0 (no holder, no waiter); otherwise queue and sleep until the
    lock is handed over."""
    might_sleep("kernel/locking/rwsem.c", 1580)
    kernel().lockdep.acquire(sem.name, 0, sem)
    if kernel().config.PREEMPT_RT:
        await rwbase_write_lock(sem, f"down_write({sem.name})", "D")
        return
    # The writer tries at once: it takes a free lock, or queues (also while readers hold
    # it, which is what blocks later readers) -- see the module docstring for why.
    await Op(sem, TRY_W, f"down_write({sem.name})")
    if sem.idle() and not sem.waiters:               # rwsem_write_trylock
        sem.owner = current()
        return
    await rwsem_down_write_slowpath(sem)


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def rwsem_down_write_slowpath(sem: rw_semaphore,
                                    state: int = TASK_UNINTERRUPTIBLE) -> int:
    """rwsem.c: rwsem_down_write_slowpath: queue, then sleep until the lock is free and
    this writer is at the head of the queue (here: handed over by rwsem_mark_wake).  In
    TASK_KILLABLE, the killable loop; on a fatal signal, out_nolock:
    rwsem_del_wake_waiter -- a writer leaving from the head of the queue lets the
    readers queued behind it in -- and -EINTR."""
    if state != TASK_KILLABLE:
        w = _queue(sem, write=True)
        await Blocked(sem, ACQ_W, f"rwsem_down_write_slowpath({sem.name}) [queued]",
                      lambda: w.granted, "D")
        return 0
    w = queue_killable(sem, write=True)
    if await lock_wait_killable(sem, w, f"rwsem_down_write_slowpath({sem.name})"):
        w.waiting = False
        return 0
    return await rwsem_out_nolock(sem, w)


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def down_write_killable(sem: rw_semaphore) -> int:
    """rwsem.c: down_write_killable (mmap_write_lock_killable: munmap, brk, mmap...):
    might_sleep(), lockdep's acquire, then __down_write_common(sem, TASK_KILLABLE): the
    fast path (rwsem_write_trylock: no holder, no waiter), else
    rwsem_down_write_slowpath in TASK_KILLABLE; -EINTR undoes lockdep's acquire.  With
    PREEMPT_RT, rwbase_write_lock(TASK_KILLABLE)."""
    might_sleep("kernel/locking/rwsem.c", 1602)
    kernel().lockdep.acquire(sem.name, 0, sem)
    if kernel().config.PREEMPT_RT:
        ret = await rwbase_write_lock(sem, f"down_write_killable({sem.name})", "K")
    else:
        await Op(sem, TRY_W, f"down_write_killable({sem.name})")
        if sem.idle() and not sem.waiters:               # rwsem_write_trylock
            sem.owner = current()
            return 0
        ret = await rwsem_down_write_slowpath(sem, TASK_KILLABLE)
    if ret:
        kernel().lockdep.release(sem.name, sem)
    return ret


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def up_write(sem: rw_semaphore) -> None:
    kernel().lockdep.release(sem.name, sem)
    if kernel().config.PREEMPT_RT:
        await rwbase_write_unlock(sem, f"up_write({sem.name})")
        return
    await Op(sem, REL_W, f"up_write({sem.name})")
    sem.owner = None
    await wake_up_q(rwsem_mark_wake(sem))


@kfunc("kernel/locking/rwsem.c", primitive=True)
async def downgrade_write(sem: rw_semaphore) -> None:
    """rwsem.c: downgrade_write: the writer becomes a reader without letting another
    writer in between, and wakes the queued readers (rwsem_downgrade_wake)."""
    await Op(sem, WRITE, f"downgrade_write({sem.name})")
    sem.owner = None
    sem.readers += 1
    if kernel().config.PREEMPT_RT:
        woken = rwbase_release_rtmutex(sem)
    else:
        woken = rwsem_mark_wake(sem)
    held = current().held_locks
    for h in held:
        if h.lock is sem:
            h.read = 1
    await wake_up_q(woken)
