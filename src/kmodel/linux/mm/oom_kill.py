"""mm/oom_kill.c: the OOM killer, the oom_reaper kthread and process_mrelease().

Simplified: victim selection (select_bad_process) is the scenario's choice; the 2 s
OOM_REAPER_DELAY timer is a task that may fire at any point after the kill, which covers
every delay; the reaper kthread handles the victims queued in the run and then ends.
"""

from __future__ import annotations

from ...engine import READ, WRITE, Op
from ..include.bitops import set_bit, test_and_set_bit, test_bit
from ..include.sched_mm import mmdrop, mmgrab
from ..kernel.core import kernel, kfunc
from ..kernel.locking.rwsem import down_read_killable, down_read_trylock, up_read
from ..kernel.locking.spinlock import spin_lock, spin_unlock, spinlock_t
from ..kernel.sched import Blocked, schedule_timeout_idle
from ..kernel.signal import PIDTYPE_TGID, SIGKILL, do_send_sig_info
from ..kernel.workqueue import spawn_kworker
from . import memory, mmu_notifier as mn
from .mm_types import MMF_OOM_REAP_QUEUED, MMF_OOM_SKIP, MMF_UNSTABLE, VM_HUGETLB, \
    VM_PFNMAP, VM_SHARED

MAX_OOM_REAP_RETRIES = 10


class oom_reaper_state:
    """oom_reaper_list, oom_reaper_lock and oom_reaper_wait."""

    def __init__(self):
        self.list: list = []
        self.lock = spinlock_t("oom_reaper_lock")
        self.cname = "oom_reaper_list"
        self.reaped_pages = 0
        self.log: list[str] = []


def reaper_state() -> oom_reaper_state:
    k = kernel()
    if k.oom_reaper is None:
        k.oom_reaper = oom_reaper_state()
    return k.oom_reaper


# -- task_lock and signals ---------------------------------------------------------------

async def task_lock(p) -> None:
    """include/linux/sched/task.h: task_lock: spin_lock(&p->alloc_lock), a spinlock_t."""
    await spin_lock(p.alloc_lock)


async def task_unlock(p) -> None:
    await spin_unlock(p.alloc_lock)


@kfunc("mm/oom_kill.c")
async def find_lock_task_mm(p):
    """oom_kill.c: find_lock_task_mm: a thread of p that still has an mm, task_lock()ed."""
    for t in p.signal.threads:
        await task_lock(t)
        if t.mm is not None:
            return t
        await task_unlock(t)
    return None


async def do_send_sig_info_sigkill(victim) -> None:
    """do_send_sig_info(SIGKILL, SEND_SIG_PRIV, victim, PIDTYPE_TGID) (kernel/signal.c),
    the call the OOM killer and the designs' hooks make: every thread of the group gets
    SIGKILL and is woken from an interruptible or killable sleep."""
    await do_send_sig_info(SIGKILL, victim, PIDTYPE_TGID)


def task_will_free_mem(p) -> bool:
    """oom_kill.c: task_will_free_mem: the victim is already on its way out (group exit:
    a SIGKILL was delivered, or it is exiting) -- and false for a task that has no mm
    any more ("if (!mm) return false": it passed exit_mm, there is nothing of it to
    mark or reap through it)."""
    if p.mm is None:
        return False
    return bool(getattr(p.signal, "exiting", False)) or p.sigkill_pending


# -- killing -------------------------------------------------------------------------

@kfunc("mm/oom_kill.c")
async def out_of_memory(victim) -> None:
    """oom_kill.c: out_of_memory, with select_bad_process having picked ``victim``."""
    await oom_kill_process(victim, "Out of memory")


@kfunc("mm/oom_kill.c")
async def oom_kill_process(victim, message: str) -> None:
    await task_lock(victim)
    if task_will_free_mem(victim):
        mark_oom_victim(victim)
        await queue_oom_reaper(victim)
        await task_unlock(victim)
        return
    await task_unlock(victim)
    await __oom_kill_process(victim, message)


@kfunc("mm/oom_kill.c")
async def __oom_kill_process(victim, message: str) -> None:
    """oom_kill.c: __oom_kill_process: under task_lock: mmgrab, SIGKILL, mark_oom_victim,
    the "Killed process" line; after task_unlock: queue_oom_reaper, mmdrop."""
    p = await find_lock_task_mm(victim)
    if p is None:
        reaper_state().log.append(f"{message}: OOM victim {victim.pid} ({victim.comm}) is "
                                  "already exiting. Skip killing the task")
        return
    victim = p
    mm = victim.mm
    mmgrab(mm)
    await do_send_sig_info(SIGKILL, victim, PIDTYPE_TGID)
    mark_oom_victim(victim)
    reaper_state().log.append(f"{message}: Killed process {victim.pid} ({victim.comm})")
    await task_unlock(victim)
    await queue_oom_reaper(victim)
    mmdrop(mm)


def mark_oom_victim(tsk) -> None:
    """oom_kill.c: mark_oom_victim: TIF_MEMDIE, signal->oom_mm = mm (with its own
    mmgrab)."""
    if tsk.signal.oom_mm is None:
        tsk.signal.oom_mm = tsk.mm
        mmgrab(tsk.mm)


@kfunc("mm/oom_kill.c")
async def queue_oom_reaper(tsk) -> None:
    """oom_kill.c: queue_oom_reaper: once per mm, arm the OOM_REAPER_DELAY timer."""
    mm = tsk.signal.oom_mm
    if await test_and_set_bit(MMF_OOM_REAP_QUEUED, mm):
        return
    spawn_kworker("timer:wake_oom_reaper", wake_oom_reaper(tsk))


@kfunc("mm/oom_kill.c")
async def wake_oom_reaper(tsk) -> None:
    """oom_kill.c: wake_oom_reaper (timer context): skip an mm whose memory is already
    gone (MMF_OOM_SKIP), otherwise queue it for the kthread."""
    st = reaper_state()
    mm = tsk.signal.oom_mm
    if await test_bit(MMF_OOM_SKIP, mm):
        return
    await spin_lock(st.lock)
    await Op(st, WRITE, "oom_reaper_list push")
    st.list.append(tsk)
    await spin_unlock(st.lock)


# -- the reaper ------------------------------------------------------------------------

@kfunc("mm/oom_kill.c")
async def oom_reaper() -> None:
    """oom_kill.c: oom_reaper kthread: wait (interruptibly, freezable) for a queued
    victim, reap it, wait again.  A run ends with it idle in that wait."""
    st = reaper_state()
    while True:
        await Blocked(st, READ, "wait_event_freezable(oom_reaper_wait)",
                      lambda: bool(st.list), "S")
        await spin_lock(st.lock)
        await Op(st, WRITE, "oom_reaper_list pop")
        tsk = st.list.pop(0)
        await spin_unlock(st.lock)
        await oom_reap_task(tsk)


@kfunc("mm/oom_kill.c")
async def oom_reap_task(tsk) -> None:
    mm = tsk.signal.oom_mm
    attempts = 0
    while attempts < MAX_OOM_REAP_RETRIES:
        attempts += 1
        if await oom_reap_task_mm(tsk, mm):
            break
        await schedule_timeout_idle("HZ/10")
    else:
        if not await test_bit(MMF_OOM_SKIP, mm):
            reaper_state().log.append(f"oom_reaper: unable to reap pid:{tsk.pid} "
                                      f"({tsk.comm})")
    await set_bit(MMF_OOM_SKIP, mm)


@kfunc("mm/oom_kill.c")
async def oom_reap_task_mm(tsk, mm) -> bool:
    if not await down_read_trylock(mm.mmap_lock):
        return False
    ret = True
    if not await test_bit(MMF_OOM_SKIP, mm):
        ret = await __oom_reap_task_mm(mm)
        if ret:
            reaper_state().log.append(f"oom_reaper: reaped process {tsk.pid} ({tsk.comm})")
    await up_read(mm.mmap_lock)
    return ret


@kfunc("mm/oom_kill.c")
async def __oom_reap_task_mm(mm) -> bool:
    """oom_kill.c: __oom_reap_task_mm (caller holds mmap_read_lock): MMF_UNSTABLE, then for
    every private VMA a non-blockable invalidation around the unmap; a VMA whose start
    fails is skipped, without range_end, and the reap is retried later."""
    ret = True
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):          # mas_for_each_rev (v6.18)
        if vma.vm_flags & {VM_HUGETLB, VM_PFNMAP}:
            continue
        if vma.is_anonymous() or VM_SHARED not in vma.vm_flags:
            rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=False)
            tlb = memory.tlb_gather_mmu(mm)
            if await mn.mmu_notifier_invalidate_range_start_nonblock(rng):
                await memory.tlb_finish_mmu(tlb)
                ret = False
                continue
            reaper_state().reaped_pages += await memory.unmap_page_range(
                tlb, vma, rng.start, rng.end)
            await mn.mmu_notifier_invalidate_range_end(rng)
            await memory.tlb_finish_mmu(tlb)
    return ret


@kfunc("mm/oom_kill.c")
async def process_mrelease(victim) -> int:
    """oom_kill.c: process_mrelease (lmkd): reap a dying process's mm from the caller's
    context, under mmap_read_lock_killable, without retries and without MMF_OOM_SKIP."""
    p = await find_lock_task_mm(victim)
    if p is None:
        return -3
    mm = p.mm
    mmgrab(mm)
    reap = task_will_free_mem(p)
    await task_unlock(p)
    ret = 0
    if reap:
        if await down_read_killable(mm.mmap_lock):     # mmap_read_lock_killable
            mmdrop(mm)
            return -4                                   # -EINTR
        if not await test_bit(MMF_OOM_SKIP, mm) and not await __oom_reap_task_mm(mm):
            ret = -11
        await up_read(mm.mmap_lock)
    mmdrop(mm)
    return ret
