"""raw_spinlock_t, spinlock_t and rwlock_t, per Documentation/locking/locktypes.rst.

Without PREEMPT_RT all three spin with preemption disabled (kernel/locking/spinlock.c);
rwlock_t is the queued rwlock (qrwlock.py), fair to a waiting writer except for readers in
interrupt context.  With PREEMPT_RT, spinlock_t and rwlock_t are rt_mutex-based sleeping
locks (kernel/locking/spinlock_rt.c) whose acquire calls rtlock_might_resched() before
even trying the lock, then takes rcu_read_lock() and migrate_disable() once it holds it;
rwlock_t is rwbase_rt (rwbase_rt.py), where a pending writer blocks new readers;
raw_spinlock_t is unchanged.

Lockdep sees read_lock() as a recursive read where the kernel does
(read_lock_is_recursive(): always without QUEUED_RWLOCKS, i.e. on PREEMPT_RT, and in
interrupt context), otherwise as a plain read.  ``_irq``/``_irqsave`` variants disable hard interrupts only
without PREEMPT_RT.

A contended spinner is a task whose acquire op is not enabled: a CPU that never gets the
lock shows as a soft lockup, an RT waiter as a task blocked on an rtlock.
"""

from __future__ import annotations

from ....engine import ACQ_W, REL_W, Op
from ..core import kernel, kfunc
from .lockdep import LD_WAIT_CONFIG, LD_WAIT_INV, LD_WAIT_SPIN, RECURSIVE_READ
from .qrwlock import (in_interrupt, queued_read_lock, queued_read_unlock, queued_write_lock,
                      queued_write_unlock)
from .rwbase_rt import rwbase_read_lock, rwbase_read_unlock, rwbase_write_lock, \
    rwbase_write_unlock
from ..sched import Blocked, __might_resched, current, preempt_disable, preempt_enable, \
    MIGHT_RESCHED_RCU_SHIFT

# Where rtlock_might_resched() expands in spinlock_rt.c (a 6.19-era file: rt_write_lock is
# line 241 in the thread's splat; the others are placed relative to it).
_RT_SPIN_LOCK_LINE = 51
_RT_READ_LOCK_LINE = 231
_RT_WRITE_LOCK_LINE = 241


class _Lock:
    lock_type = "lock"
    wait_type_inner = LD_WAIT_INV
    wait_type_outer = LD_WAIT_INV

    def __init__(self, name: str):
        self.name = name          # also the lockdep class: "&kvm->mmu_lock"
        self.cname = name
        self.owner = None
        self.readers = 0
        self.waiters: list = []          # rwlock_t: qrwlock's wait_lock queue, or rwbase's
        self.rtmutex_owner = None        # PREEMPT_RT rwlock_t: the writer holding rtmutex

    def free(self) -> bool:
        return self.owner is None

    def no_writer(self) -> bool:
        return self.owner is None

    def idle(self) -> bool:
        return self.owner is None and self.readers == 0

    def __repr__(self):
        return f"<{self.lock_type} {self.name}>"


class raw_spinlock_t(_Lock):
    """RAW_DEP_MAP_INIT: LD_WAIT_SPIN."""
    lock_type = "raw_spinlock_t"
    wait_type_inner = LD_WAIT_SPIN


class spinlock_t(_Lock):
    """SPIN_DEP_MAP_INIT: LD_WAIT_CONFIG, with and without PREEMPT_RT."""
    lock_type = "spinlock_t"
    wait_type_inner = LD_WAIT_CONFIG


class rwlock_t(_Lock):
    """RW_DEP_MAP_INIT: LD_WAIT_CONFIG."""
    lock_type = "rwlock_t"
    wait_type_inner = LD_WAIT_CONFIG


class raw_rwlock_t(rwlock_t):
    """Not a kernel type: an rwlock_t that keeps spinning under PREEMPT_RT, which is what
    "turn mmu_lock into a raw lock" (Sean, 2026-02-11) would need for a reader/writer lock.
    read_lock()/write_lock() on it always take the spinning path."""
    lock_type = "raw rwlock_t"
    wait_type_inner = LD_WAIT_SPIN


def _check_type(lock, expected, api: str) -> None:
    if not isinstance(lock, expected):
        raise TypeError(f"{api}() on {lock.lock_type} {lock.name}: the kernel would not "
                        f"build this")


def _rtlock_might_resched(line: int) -> None:
    """spinlock_rt.c: rtlock_might_resched(): RCU nesting is allowed, nothing else."""
    ts = current()
    __might_resched("kernel/locking/spinlock_rt.c", line,
                    ts.rcu_read_lock_nesting << MIGHT_RESCHED_RCU_SHIFT)


# -- the spinning implementation (raw locks everywhere; all locks without PREEMPT_RT) --

async def _spin_acquire(lock, label: str, irq: bool) -> None:
    ts = current()
    if irq:
        ts.irqs_disabled += 1
    preempt_disable()
    kernel().lockdep.acquire(lock.name, 0, lock)
    await Blocked(lock, ACQ_W, label, lock.idle, "R")
    lock.owner = ts


async def _spin_release(lock, label: str, irq: bool) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    await Op(lock, REL_W, label)
    lock.owner = None
    preempt_enable()
    if irq:
        ts.irqs_disabled -= 1


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_spin_lock(lock, label: str, irq: bool = False) -> None:
    await _spin_acquire(lock, label, irq)


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_spin_unlock(lock, label: str, irq: bool = False) -> None:
    await _spin_release(lock, label, irq)


def read_lock_is_recursive() -> bool:
    """lockdep.c: read_lock_is_recursive: !IS_ENABLED(CONFIG_QUEUED_RWLOCKS) (which
    depends on !PREEMPT_RT) or in_interrupt()."""
    return kernel().config.PREEMPT_RT or in_interrupt()


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_read_lock(lock, label: str, irq: bool = False) -> None:
    ts = current()
    if irq:
        ts.irqs_disabled += 1
    preempt_disable()
    read = RECURSIVE_READ if read_lock_is_recursive() else 1
    kernel().lockdep.acquire(lock.name, read, lock)
    await queued_read_lock(lock, label)


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_read_unlock(lock, label: str, irq: bool = False) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    await queued_read_unlock(lock, label)
    preempt_enable()
    if irq:
        ts.irqs_disabled -= 1


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_write_lock(lock, label: str, irq: bool = False) -> None:
    ts = current()
    if irq:
        ts.irqs_disabled += 1
    preempt_disable()
    kernel().lockdep.acquire(lock.name, 0, lock)
    await queued_write_lock(lock, label)


@kfunc("kernel/locking/spinlock.c", primitive=True)
async def _raw_write_unlock(lock, label: str, irq: bool = False) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    await queued_write_unlock(lock, label)
    preempt_enable()
    if irq:
        ts.irqs_disabled -= 1


# -- the PREEMPT_RT implementation -----------------------------------------------------

@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_spin_lock(lock, label: str) -> None:
    """spinlock_rt.c: rt_spin_lock: lockdep first, then __rt_spin_lock (inlined):
    rtlock_might_resched(), the rtmutex, rcu_read_lock(), migrate_disable()."""
    ts = current()
    kernel().lockdep.acquire(lock.name, 0, lock)
    _rtlock_might_resched(_RT_SPIN_LOCK_LINE)
    await Blocked(lock, ACQ_W, label, lock.idle, "rtlock")
    lock.owner = ts
    ts.rcu_read_lock_nesting += 1
    ts.migration_disabled += 1


@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_spin_unlock(lock, label: str) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    ts.migration_disabled -= 1
    ts.rcu_read_lock_nesting -= 1
    await Op(lock, REL_W, label)
    lock.owner = None


@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_read_lock(lock, label: str) -> None:
    """spinlock_rt.c: rt_read_lock: rtlock_might_resched() first, then lockdep (a
    recursive read: no QUEUED_RWLOCKS on PREEMPT_RT), then rwbase_read_lock in
    TASK_RTLOCK_WAIT, rcu_read_lock(), migrate_disable()."""
    ts = current()
    _rtlock_might_resched(_RT_READ_LOCK_LINE)
    kernel().lockdep.acquire(lock.name, RECURSIVE_READ, lock)
    await rwbase_read_lock(lock, label, "rtlock")
    ts.rcu_read_lock_nesting += 1
    ts.migration_disabled += 1


@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_read_unlock(lock, label: str) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    ts.migration_disabled -= 1
    ts.rcu_read_lock_nesting -= 1
    await rwbase_read_unlock(lock, label)


@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_write_lock(lock, label: str) -> None:
    """spinlock_rt.c: rt_write_lock: rtlock_might_resched() first, then lockdep, then
    rwbase_write_lock in TASK_RTLOCK_WAIT, rcu_read_lock(), migrate_disable()."""
    ts = current()
    _rtlock_might_resched(_RT_WRITE_LOCK_LINE)
    kernel().lockdep.acquire(lock.name, 0, lock)
    await rwbase_write_lock(lock, label, "rtlock")
    ts.rcu_read_lock_nesting += 1
    ts.migration_disabled += 1


@kfunc("kernel/locking/spinlock_rt.c", primitive=True)
async def rt_write_unlock(lock, label: str) -> None:
    ts = current()
    kernel().lockdep.release(lock.name, lock)
    ts.migration_disabled -= 1
    ts.rcu_read_lock_nesting -= 1
    await rwbase_write_unlock(lock, label)


# -- the API ---------------------------------------------------------------------------

def _rt(lock=None) -> bool:
    return kernel().config.PREEMPT_RT and not isinstance(lock, raw_rwlock_t)


async def raw_spin_lock(lock) -> None:
    _check_type(lock, raw_spinlock_t, "raw_spin_lock")
    await _raw_spin_lock(lock, f"raw_spin_lock({lock.name})")


async def raw_spin_unlock(lock) -> None:
    _check_type(lock, raw_spinlock_t, "raw_spin_unlock")
    await _raw_spin_unlock(lock, f"raw_spin_unlock({lock.name})")


async def raw_spin_lock_irq(lock) -> None:
    _check_type(lock, raw_spinlock_t, "raw_spin_lock_irq")
    await _raw_spin_lock(lock, f"raw_spin_lock_irq({lock.name})", irq=True)


async def raw_spin_unlock_irq(lock) -> None:
    _check_type(lock, raw_spinlock_t, "raw_spin_unlock_irq")
    await _raw_spin_unlock(lock, f"raw_spin_unlock_irq({lock.name})", irq=True)


async def spin_lock(lock) -> None:
    _check_type(lock, spinlock_t, "spin_lock")
    label = f"spin_lock({lock.name})"
    if _rt():
        await rt_spin_lock(lock, label)
    else:
        await _raw_spin_lock(lock, label)


async def spin_unlock(lock) -> None:
    _check_type(lock, spinlock_t, "spin_unlock")
    label = f"spin_unlock({lock.name})"
    if _rt():
        await rt_spin_unlock(lock, label)
    else:
        await _raw_spin_unlock(lock, label)


async def spin_lock_irq(lock) -> None:
    _check_type(lock, spinlock_t, "spin_lock_irq")
    label = f"spin_lock_irq({lock.name})"
    if _rt():
        await rt_spin_lock(lock, label)
    else:
        await _raw_spin_lock(lock, label, irq=True)


async def spin_unlock_irq(lock) -> None:
    _check_type(lock, spinlock_t, "spin_unlock_irq")
    label = f"spin_unlock_irq({lock.name})"
    if _rt():
        await rt_spin_unlock(lock, label)
    else:
        await _raw_spin_unlock(lock, label, irq=True)


async def read_lock(lock, irq: bool = False) -> None:
    _check_type(lock, rwlock_t, "read_lock")
    label = f"read_lock{'_irq' if irq else ''}({lock.name})"
    if _rt(lock):
        await rt_read_lock(lock, label)
    else:
        await _raw_read_lock(lock, label, irq)


async def read_unlock(lock, irq: bool = False) -> None:
    _check_type(lock, rwlock_t, "read_unlock")
    label = f"read_unlock{'_irq' if irq else ''}({lock.name})"
    if _rt(lock):
        await rt_read_unlock(lock, label)
    else:
        await _raw_read_unlock(lock, label, irq)


async def write_lock(lock, irq: bool = False) -> None:
    _check_type(lock, rwlock_t, "write_lock")
    label = f"write_lock{'_irq' if irq else ''}({lock.name})"
    if _rt(lock):
        await rt_write_lock(lock, label)
    else:
        await _raw_write_lock(lock, label, irq)


async def write_unlock(lock, irq: bool = False) -> None:
    _check_type(lock, rwlock_t, "write_unlock")
    label = f"write_unlock{'_irq' if irq else ''}({lock.name})"
    if _rt(lock):
        await rt_write_unlock(lock, label)
    else:
        await _raw_write_unlock(lock, label, irq)


async def read_lock_irq(lock) -> None:
    await read_lock(lock, irq=True)


async def read_unlock_irq(lock) -> None:
    await read_unlock(lock, irq=True)


async def write_lock_irq(lock) -> None:
    await write_lock(lock, irq=True)


async def write_unlock_irq(lock) -> None:
    await write_unlock(lock, irq=True)


