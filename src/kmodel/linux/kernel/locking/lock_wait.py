"""The sleeping locks' shared waiting: the waiter a slow path queues, the TASK_KILLABLE
wait loop and the wake-ups after wait_lock is dropped -- one copy for rwsem.py,
rwbase_rt.py and mutex.py (and the waiter for qrwlock.py), as kernel/locking keeps its
shared pieces apart from each lock's file (rtmutex_common.h, the rt_mutex_waiter all
the rtmutex-based locks use).

Each slow path's loop in the kernel is its own copy of the same steps (rwsem.c
rwsem_down_{read,write}_slowpath, mutex.c __mutex_lock_common, rtmutex.c
rt_mutex_slowlock_block); wake_up_q is kernel/sched/core.c's.
"""

from __future__ import annotations

from ....engine import READ, WRITE, Op
from ..sched import TASK_KILLABLE, TASK_RUNNING, Blocked, current, sigpending


class lock_waiter:
    """struct rwsem_waiter / rt_mutex_waiter / mutex_waiter: who waits, for what, and
    whether the waker has granted it the lock (waiter->task = NULL in rwsem_mark_wake).
    A killable waiter sleeps on its task state and must be woken (``killable``);
    ``waiting`` is true until it has left the lock's wait (granted or killed)."""
    __slots__ = ("task", "write", "granted", "killable", "waiting")

    def __init__(self, task, write: bool, killable: bool = False):
        self.task = task
        self.write = write
        self.granted = False
        self.killable = killable
        self.waiting = True


EINTR = -4


def queue_killable(lock, write: bool) -> lock_waiter:
    """Queue a killable waiter, the task's state already TASK_KILLABLE (the slow paths
    set it under wait_lock, before the first check of the wait loop)."""
    ts = current()
    w = lock_waiter(ts, write, killable=True)
    lock.waiters.append(w)
    ts.state = TASK_KILLABLE
    return w


async def lock_wait_killable(lock, w: lock_waiter, label: str, ready=None) -> bool:
    """The TASK_KILLABLE wait loop of the sleeping locks' slow paths (rwsem.c
    rwsem_down_{read,write}_slowpath, mutex.c __mutex_lock_common, rtmutex.c
    rt_mutex_slowlock_block): until ``ready()`` (by default: the waker granted the
    lock), check for a fatal signal (signal_pending_state, its own step on the pending
    set, ordered against the sender's sigaddset), then schedule() until a wake-up (the
    granter's wake_up_q or signal_wake_up).  True once ready; False when a fatal signal
    is pending -- the caller then takes wait_lock and leaves (out_nolock), after checking
    once more that the lock was not granted meanwhile."""
    ts = current()
    ready = ready or (lambda: w.granted)
    while True:
        if ready():
            ts.state = TASK_RUNNING
            return True
        await Op(sigpending(ts), READ, f"signal_pending_state(TASK_KILLABLE, {ts.comm})")
        if ts.sigkill_pending:
            ts.state = TASK_RUNNING
            return False
        await Blocked(ts, READ, f"{label} [TASK_KILLABLE]",
                      lambda: ts.state == TASK_RUNNING, "K")
        if not ready():
            ts.state = TASK_KILLABLE                 # set_current_state(state)


async def wake_up_q(woken: list) -> None:
    """kernel/sched/core.c: wake_up_q, after the waker dropped wait_lock: wake each
    killable waiter it granted (an uninterruptible waiter here waits on the lock itself
    and needs no wake-up op).  A waiter that already left its wait is not woken again
    (the kernel's spurious wake-up, absorbed by the waits' loops, is not modelled)."""
    for w in woken:
        if not w.killable:
            continue
        await Op(w.task, WRITE, f"wake_up_q -> wake_up_process({w.task.comm})")
        if w.waiting:
            w.task.state = TASK_RUNNING
