"""kernel/locking/mutex.c: struct mutex.  A sleeping lock on every kernel.

mutex_lock's waiter sleeps in TASK_UNINTERRUPTIBLE, so a mutex that is never released
leaves hung tasks.  mutex_lock_killable's waiter (__mutex_lock_common with
TASK_KILLABLE) sleeps in TASK_KILLABLE on the mutex's wait list: the unlock wakes the
first waiter (__mutex_unlock_slowpath -> wake_q), which takes the lock with a trylock
under wait_lock; a fatal signal ends the wait with -EINTR, the waiter leaving the list
(the kernel checks the signal only after that trylock, so a woken waiter never drops a
free lock).  Its wait is lock_wait.py's killable wait loop (lock_wait_killable).

Simplified: an uninterruptible waiter is not queued -- it waits for the mutex to be
free and any such waiter can take it (the kernel's FIFO wait list plus optimistic
spinning and handoff only narrow the orders the model explores); killable waiters are
queued and the unlock wakes the first one.
"""

from __future__ import annotations

from ....engine import ACQ_W, REL_W, TRY_W, WRITE, Op
from ..core import kernel, kfunc
from ..sched import TASK_KILLABLE, Blocked, current, might_sleep
from .lock_wait import EINTR, lock_wait_killable, queue_killable, wake_up_q
from .lockdep import LD_WAIT_SLEEP


class mutex:
    lock_type = "mutex"
    wait_type_inner = LD_WAIT_SLEEP      # __DEP_MAP_MUTEX_INITIALIZER

    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.owner = None
        self.waiters: list = []          # lock->wait_list: the killable waiters, in order

    def free(self) -> bool:
        return self.owner is None


@kfunc("kernel/locking/mutex.c", primitive=True)
async def mutex_lock(lock: mutex) -> None:
    """mutex.c: mutex_lock: might_sleep(), lockdep, then sleep uninterruptibly until
    the owner releases it."""
    might_sleep("kernel/locking/mutex.c", 283)
    kernel().lockdep.acquire(lock.name, 0, lock)
    await Blocked(lock, ACQ_W, f"mutex_lock({lock.name})", lock.free, "D")
    lock.owner = current()


@kfunc("kernel/locking/mutex.c", primitive=True)
async def mutex_lock_killable(lock: mutex) -> int:
    """mutex.c: mutex_lock_killable: might_sleep(), lockdep's acquire, the fast path
    (__mutex_trylock_fast), else __mutex_lock_killable_slowpath -> __mutex_lock(lock,
    TASK_KILLABLE); -EINTR from it undoes lockdep's acquire (mutex_release).  A free
    mutex is taken even with a signal pending."""
    might_sleep("kernel/locking/mutex.c", 1008)
    kernel().lockdep.acquire(lock.name, 0, lock)
    await Op(lock, TRY_W, f"mutex_lock_killable({lock.name})")
    if lock.owner is None:                            # __mutex_trylock_fast
        lock.owner = current()
        return 0
    ret = await __mutex_lock_killable_slowpath(lock)
    if ret:
        kernel().lockdep.release(lock.name, lock)
    return ret


@kfunc("kernel/locking/mutex.c", primitive=True)
async def __mutex_lock_killable_slowpath(lock: mutex) -> int:
    """mutex.c: __mutex_lock_common(lock, TASK_KILLABLE): queue on the wait list (in the
    caller's step, under wait_lock), then loop: sleep until woken (by the unlock or the
    signal); under wait_lock, __mutex_trylock -- taking the lock if it is free -- and only
    then signal_pending_state: -EINTR, the waiter removed (__mutex_remove_waiter)."""
    ts = current()
    w = queue_killable(lock, write=True)
    while True:
        woken = await lock_wait_killable(lock, w, f"__mutex_lock({lock.name})",
                                         lambda: ts.state != TASK_KILLABLE)
        await Op(lock, WRITE, f"__mutex_trylock({lock.name}) [wait_lock]")
        if lock.owner is None:
            lock.owner = ts
            lock.waiters.remove(w)
            w.waiting = False
            return 0
        if not woken:                                 # signal_pending_state
            lock.waiters.remove(w)
            w.waiting = False
            return EINTR
        ts.state = TASK_KILLABLE                      # set_current_state(state)


@kfunc("kernel/locking/mutex.c", primitive=True)
async def mutex_unlock(lock: mutex) -> None:
    """mutex.c: mutex_unlock: release; with waiters, __mutex_unlock_slowpath wakes the
    first one (it then takes the lock itself)."""
    kernel().lockdep.release(lock.name, lock)
    await Op(lock, REL_W, f"mutex_unlock({lock.name})")
    lock.owner = None
    if lock.waiters:
        await wake_up_q(lock.waiters[:1])
