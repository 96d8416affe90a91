"""kernel/rcu/srcutree.c and include/linux/srcu.h: sleepable RCU.

- srcu_read_lock() enters a read section and returns its index; readers never block each
  other and may sleep.  Lockdep sees a recursive read of the srcu_struct (since v6.4).
- synchronize_srcu() may sleep; lockdep sees an empty write-side section first
  (srcu_lock_sync), so calling it inside a read section of the same srcu_struct is
  "possible recursive locking" -- and a real deadlock.  It waits for the readers that
  began before it, not for later ones -- and, since it is a call_srcu() of a wake-up
  callback (wakeme_after_rcu), for the callbacks queued before it on the same list.
- call_srcu() never blocks: the callback runs after a grace period, from a workqueue
  (srcu_invoke_callbacks) with bottom halves disabled; the callbacks of one list run one
  at a time, in the order they were queued.
- srcu_barrier() waits for the callbacks queued before it on every list, not for readers.

Which list a callback goes on is srcutree's size state (srcu_gp_start_if_needed):
- small (SRCU_SIZE_SMALL; SRCU_SIZE_BIG=n, the default): every callback on the boot
  CPU's list -- one list, so callbacks are ordered and synchronize_srcu() waits for the
  ones queued before it.  This is what a distro server kernel runs: srcutree.convert_to_big
  defaults to SRCU_SIZING_AUTO, which srcu_init() turns into "small, converted to big on
  contention" below big_cpu_lim (128) CPUs ("Setting srcu_struct sizes based on
  contention"), and the modelled workloads never reach the contention threshold.
- big (SRCU_SIZE_BIG=y: 128 CPUs or more, or srcutree.convert_to_big=1): each CPU's
  callbacks on its own list (every model task runs on its own CPU), invoked concurrently
  by separate workers; synchronize_srcu() orders only behind its own CPU's callbacks.

Simplified: the two-index flip of srcutree is not modelled; a grace period is exactly
"every reader that was inside when it started has left", which is what callers rely on.

Dependencies, as the search sees them.  Starting a grace period (synchronize_srcu,
call_srcu) takes a snapshot of the readers inside: it conflicts with every
srcu_read_lock of the domain (whether the grace period waits for that reader depends on
the order).  Its end waits for the snapshot's readers only, one at a time, each on that
reader's own token (``(ssp, "reader", token)``), which its srcu_read_unlock releases: so
a grace period's end happens after exactly those unlocks, and does not conflict with a
reader that came later (which it does not wait for).  A srcu_read_unlock touches only
its token: whether it comes before or after a grace period starts, the grace period
ends after it (it waits for the reader, or the reader had left), so the two orders are
one -- but the unlock must still happen-before the grace period's end when the reader
left first, so each start acquires the tokens of the readers that left since the
previous start (acquire against release: ordered, never a race).  With one object for
the whole domain the search explores both orders of events that commute.  The
callbacks of one list are ordered among themselves on ``(ssp, "callbacks", list)``.
"""

from __future__ import annotations

from ....engine import ACQ_R, REL_W, WRITE, Op
from ..core import kernel, kfunc
from ..sched import Blocked, current, might_sleep
from ..workqueue import spawn_kworker


class srcu_struct:
    def __init__(self, name: str):
        self.name = name              # lockdep class: "srcu", "&kvm->srcu"
        self.cname = name
        self.readers: dict[int, object] = {}   # reader token -> task_struct
        self.left: set[int] = set()            # tokens whose read section has ended
        self.left_unseen: list[int] = []       # ... since the last grace period started
        self.next_token = 0
        self.idx = 0
        self.callbacks_queued = 0
        self.callbacks_invoked = 0
        self.queued: dict[int, int] = {}    # callback list (srcu_data's CPU) -> queued
        self.invoked: dict[int, int] = {}   # ... -> invoked (in order, one at a time)


def srcu_cblist(ssp: srcu_struct) -> int:
    """srcutree.c: srcu_gp_start_if_needed: the srcu_data whose list takes the callback:
    the boot CPU's while the srcu_struct is small, the current CPU's once it is big."""
    return current().cpu if kernel().config.SRCU_SIZE_BIG else 0


def _start_grace_period(ssp: srcu_struct) -> tuple[tuple, tuple]:
    """The snapshot a grace period starts from: the readers inside (it waits for them)
    and those that left since the last start (it is ordered after them)."""
    left = tuple(ssp.left_unseen)
    ssp.left_unseen = []
    return tuple(ssp.readers), left


async def _after_readers_left(ssp: srcu_struct, left: tuple, label: str) -> None:
    """Happens-before from the unlocks of readers that left before the grace period
    started: in the kernel, the memory barriers of srcu_read_unlock and of the grace
    period's start."""
    for tok in left:
        await Op((ssp, "reader", tok), ACQ_R, f"{label}: after reader #{tok} left")


async def _wait_for_readers(ssp: srcu_struct, snapshot: tuple, label: str, how: str):
    """The end of a grace period: wait until each reader of ``snapshot`` has left."""
    for i in range(len(snapshot)):
        tok = snapshot[i]
        await Blocked((ssp, "reader", tok), ACQ_R, label,
                      lambda tok=tok: tok in ssp.left, how)


@kfunc("include/linux/srcu.h", primitive=True)
async def srcu_read_lock(ssp: srcu_struct) -> int:
    kernel().lockdep.acquire(ssp.name, 2, ssp)      # srcu_lock_acquire: recursive read
    await Op(ssp, ACQ_R, f"srcu_read_lock({ssp.name})")
    tok = ssp.next_token
    ssp.next_token += 1
    ssp.readers[tok] = current()
    current().srcu_tokens = getattr(current(), "srcu_tokens", []) + [(ssp, tok)]
    return tok


@kfunc("include/linux/srcu.h", primitive=True)
async def srcu_read_unlock(ssp: srcu_struct, idx: int) -> None:
    kernel().lockdep.release(ssp.name, ssp)
    await Op((ssp, "reader", idx), REL_W, f"srcu_read_unlock({ssp.name})")
    ssp.readers.pop(idx, None)
    ssp.left.add(idx)
    ssp.left_unseen.append(idx)
    ts = current()
    ts.srcu_tokens = [t for t in getattr(ts, "srcu_tokens", []) if t != (ssp, idx)]


def srcu_read_lock_held(ssp: srcu_struct) -> bool:
    """include/linux/srcu.h: srcu_read_lock_held: is the current task inside a read
    section of ``ssp`` (lockdep's view; always true once lockdep is off)."""
    if not kernel().lockdep.on:
        return True
    return any(s is ssp for s, _ in getattr(current(), "srcu_tokens", ()))


@kfunc("kernel/rcu/srcutree.c")
async def __synchronize_srcu(ssp: srcu_struct) -> None:
    """srcutree.c: __synchronize_srcu: srcu_lock_sync() for lockdep, then queue a wake-up
    callback (__call_srcu of wakeme_after_rcu) and wait_for_completion(): it completes
    once the current readers have left and the callbacks queued before it on the same
    list have run."""
    kernel().lockdep.sync(ssp.name, ssp)
    might_sleep("kernel/rcu/srcutree.c", 1462)
    await Op(ssp, WRITE, f"synchronize_srcu({ssp.name}): start grace period")
    snapshot, left = _start_grace_period(ssp)
    await _after_readers_left(ssp, left, f"synchronize_srcu({ssp.name})")
    lst = srcu_cblist(ssp)
    before = ssp.queued.get(lst, 0)
    label = f"wait_for_completion(srcu grace period of {ssp.name})"
    await _wait_for_readers(ssp, snapshot, label, "D")
    if before:
        await Blocked((ssp, "callbacks", lst), WRITE, label,
                      lambda: ssp.invoked.get(lst, 0) >= before, "D")


@kfunc("kernel/rcu/srcutree.c")
async def synchronize_srcu(ssp: srcu_struct) -> None:
    await __synchronize_srcu(ssp)


@kfunc("kernel/rcu/srcutree.c")
async def synchronize_srcu_expedited(ssp: srcu_struct) -> None:
    await __synchronize_srcu(ssp)


@kfunc("kernel/rcu/srcutree.c")
async def call_srcu(ssp: srcu_struct, func, arg, name: str) -> None:
    """srcutree.c: call_srcu: queue ``func(arg)`` on this srcu_struct's list for the
    current CPU (srcu_cblist) to run after a grace period; never blocks.  The callback is
    invoked by a kworker (srcu_invoke_callbacks)."""
    await Op(ssp, WRITE, f"call_srcu({ssp.name}, {name})")
    snapshot, left = _start_grace_period(ssp)
    await _after_readers_left(ssp, left, f"call_srcu({ssp.name}, {name})")
    lst = srcu_cblist(ssp)
    seq = ssp.queued.get(lst, 0)
    ssp.queued[lst] = seq + 1
    ssp.callbacks_queued += 1
    spawn_kworker(f"srcu:{name}", srcu_invoke_callbacks(ssp, snapshot, lst, seq, func, arg))


@kfunc("kernel/rcu/srcutree.c")
async def srcu_invoke_callbacks(ssp: srcu_struct, snapshot, lst, seq, func, arg) -> None:
    """srcutree.c: srcu_invoke_callbacks: once the grace period has ended, run the
    callback with bottom halves disabled; the callbacks of one list run in order, one at
    a time (sdp->srcu_cblist_invoking)."""
    cpu = f" (CPU {lst})" if kernel().config.SRCU_SIZE_BIG else ""
    label = f"srcu grace period for callback #{seq} of {ssp.name}{cpu}"
    await _wait_for_readers(ssp, snapshot, label, "I")
    await Blocked((ssp, "callbacks", lst), WRITE, label,
                  lambda: ssp.invoked.get(lst, 0) == seq, "I")
    local_bh_disable()
    try:
        await func(arg)
    finally:
        local_bh_enable()
    await Op((ssp, "callbacks", lst), WRITE, f"srcu callback #{seq} of {ssp.name} done")
    ssp.invoked[lst] = seq + 1
    ssp.callbacks_invoked += 1


@kfunc("kernel/rcu/srcutree.c")
async def srcu_barrier(ssp: srcu_struct) -> None:
    """srcutree.c: srcu_barrier: wait for every callback queued before it, on every list
    (it entrains a callback behind each); with none pending it returns without waiting
    for readers."""
    might_sleep("kernel/rcu/srcutree.c", 1690)
    await Op(ssp, WRITE, f"srcu_barrier({ssp.name})")
    target = dict(ssp.queued)
    for lst in sorted(target):
        await Blocked((ssp, "callbacks", lst), WRITE,
                      f"wait_for_completion(srcu_barrier of {ssp.name})",
                      lambda lst=lst: ssp.invoked.get(lst, 0) >= target[lst], "D")


def local_bh_disable() -> None:
    """include/linux/bottom_half.h: without PREEMPT_RT, softirq-disabled counts in
    preempt_count (so in_atomic()); with it, a per-CPU local lock plus rcu_read_lock()."""
    ts = current()
    if kernel().config.PREEMPT_RT:
        ts.rcu_read_lock_nesting += 1
    else:
        from ..sched import SOFTIRQ_DISABLE_OFFSET
        ts.preempt_count += SOFTIRQ_DISABLE_OFFSET


def local_bh_enable() -> None:
    ts = current()
    if kernel().config.PREEMPT_RT:
        ts.rcu_read_lock_nesting -= 1
    else:
        from ..sched import SOFTIRQ_DISABLE_OFFSET
        ts.preempt_count -= SOFTIRQ_DISABLE_OFFSET
