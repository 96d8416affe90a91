"""kernel/locking/qrwlock.c and include/asm-generic/qrwlock.h: rwlock_t without
PREEMPT_RT (x86 and arm64 select ARCH_USE_QUEUED_RWLOCKS).

A writer that cannot take the lock queues on the lock's wait_lock (a fair spinlock) and,
at the head, sets _QW_WAITING: from then on new readers fail their fast path and queue
behind it -- except a reader in interrupt context (in_interrupt(): hard or soft IRQ, or
bottom halves disabled), which only waits for a writer that holds the lock, so that
read_lock() stays recursive in interrupts.  Everyone spins: a CPU that never gets the
lock shows as a soft lockup.

Simplified: a release hands the lock to the head of the wait queue directly -- the head
writer once no reader is left, or the readers at the head (each head reader passes
wait_lock on to the next at once).
"""

from __future__ import annotations

from ....engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_W, Op
from ..core import kfunc
from ..sched import Blocked, current
from .lock_wait import lock_waiter

SOFTIRQ_MASK = 0xff00
HARDIRQ_MASK = 0xf0000
NMI_MASK = 0xf00000


def in_interrupt() -> bool:
    """include/linux/preempt.h: in_interrupt(): irq_count() -- NMI, hard IRQ or softirq
    count, and the softirq count includes local_bh_disable() without PREEMPT_RT."""
    return bool(current().preempt_count & (SOFTIRQ_MASK | HARDIRQ_MASK | NMI_MASK))


def _writer_waiting(lock) -> bool:
    return any(w.write for w in lock.waiters)


def qrwlock_wake(lock) -> None:
    """Who gets the lock when it is released: the readers at the head of the wait queue
    while no writer holds it, or the head writer once it is free."""
    while lock.waiters and lock.owner is None:
        head = lock.waiters[0]
        if head.write:
            if lock.readers:
                return
            lock.waiters.pop(0)
            lock.owner = head.task
            head.granted = True
            return
        lock.waiters.pop(0)
        lock.readers += 1
        head.granted = True


@kfunc("include/asm-generic/qrwlock.h", inline=True)
async def queued_read_lock(lock, label: str) -> None:
    """qrwlock.h: queued_read_lock: the fast path adds a reader unless a writer holds the
    lock or waits for it (_QW_WMASK); otherwise queued_read_lock_slowpath."""
    await Blocked(lock, ACQ_R, label, lock.no_writer, "R")   # see rwsem.py: down_read
    if not _writer_waiting(lock):
        lock.readers += 1
        return
    await queued_read_lock_slowpath(lock)


@kfunc("kernel/locking/qrwlock.c", primitive=True)
async def queued_read_lock_slowpath(lock) -> None:
    """qrwlock.c: queued_read_lock_slowpath: in interrupt context, spin only until no
    writer holds the lock; otherwise queue on wait_lock behind the waiting writer."""
    if in_interrupt():               # no writer holds it (the fast path's wait): take it
        lock.readers += 1
        return
    w = lock_waiter(current(), write=False)
    lock.waiters.append(w)
    await Blocked(lock, ACQ_R, f"queued_read_lock_slowpath({lock.name}) [queued]",
                  lambda: w.granted, "R")


@kfunc("include/asm-generic/qrwlock.h", inline=True)
async def queued_write_lock(lock, label: str) -> None:
    """qrwlock.h: queued_write_lock: the fast path needs the lock word to be 0;
    otherwise queued_write_lock_slowpath."""
    await Op(lock, TRY_W, label)
    if lock.idle() and not lock.waiters:
        lock.owner = current()
        return
    await queued_write_lock_slowpath(lock)


@kfunc("kernel/locking/qrwlock.c", primitive=True)
async def queued_write_lock_slowpath(lock) -> None:
    """qrwlock.c: queued_write_lock_slowpath: queue on wait_lock; at its head, set
    _QW_WAITING and spin until the readers have left."""
    w = lock_waiter(current(), write=True)
    lock.waiters.append(w)
    await Blocked(lock, ACQ_W, f"queued_write_lock_slowpath({lock.name}) [queued]",
                  lambda: w.granted, "R")


async def queued_read_unlock(lock, label: str) -> None:
    await Op(lock, REL_R, label)
    lock.readers -= 1
    qrwlock_wake(lock)


async def queued_write_unlock(lock, label: str) -> None:
    await Op(lock, REL_W, label)
    lock.owner = None
    qrwlock_wake(lock)
