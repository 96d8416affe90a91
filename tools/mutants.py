"""The mutants of the kernel model: small faults, one at a time.

Each mutant replaces the body (``impl``) of one or more modelled kernel functions (see
``kmodel.linux.kernel.core.kfunc``: the body a kfunc runs is ``REGISTRY[name].impl``).
A fault inside a function body is written as a copy of the upstream function with the one
change marked ``# MUTANT:``; everything else is kept as in src/kmodel/linux.

``MUTANTS`` lists them: name -> Mutant(what, {kernel function: replacement body}).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kmodel.engine import READ, WRITE, Op
from kmodel.linux.include.bitops import set_bit
from kmodel.linux.include.rwonce import load, store
from kmodel.linux.include.sched_mm import mmdrop
from kmodel.linux.kernel.core import REGISTRY
from kmodel.linux.kernel.locking.mutex import mutex_unlock
from kmodel.linux.kernel.locking.spinlock import (read_lock, read_unlock, spin_lock,
                                                  spin_unlock, write_lock, write_unlock)
from kmodel.linux.kernel.panic import BUG_ON, WARN_ON, WARN_ON_ONCE
from kmodel.linux.kernel.rcu.srcu import (srcu_read_lock, srcu_read_unlock,
                                          synchronize_srcu_expedited)
from kmodel.linux.kernel.rcuwait import (finish_rcuwait, prepare_to_rcuwait,
                                         rcuwait_wake_up)
from kmodel.linux.kernel.sched import TASK_UNINTERRUPTIBLE, schedule, set_current_state
from kmodel.linux.mm import memory
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.include.list import hlist_empty, hlist_entry, hlist_unhashed
from kmodel.linux.include.rculist import hlist_del_init_rcu, hlist_for_each_entry_srcu
from kmodel.linux.mm import oom_kill
from kmodel.linux.mm.mm_types import VM_HUGETLB, VM_PFNMAP, VM_SHARED, MMF_UNSTABLE
from kmodel.linux.virt.kvm import kvm_main, pfncache
from kmodel.linux.virt.kvm.kvm_host import INVALID_GPA
# the arch MMUs register their kfuncs when first imported (kvm_main.arch() imports them
# lazily); import both so that every mutant's target is in REGISTRY from the start
import kmodel.linux.arch.arm64.kvm.mmu  # noqa: E402,F401
import kmodel.linux.arch.x86.kvm.mmu  # noqa: E402,F401


@dataclass
class Mutant:
    what: str
    bodies: dict = field(default_factory=dict)    # kernel function name -> new impl
    expect: str = ""                               # what should catch it


class mutated:
    """Context manager: the mutant's bodies in force, the upstream ones back on exit."""

    def __init__(self, mutant: Mutant):
        self.mutant = mutant
        self._undo = []

    def __enter__(self):
        for name, fn in self.mutant.bodies.items():
            target = REGISTRY[name]
            self._undo.append((target, target.impl))
            target.impl = fn
        return self

    def __exit__(self, *exc):
        for target, impl in reversed(self._undo):
            target.impl = impl
        self._undo.clear()
        return False


# -- virt/kvm/kvm_main.c ------------------------------------------------------------------

def _start_range(kvm, range_):
    return kvm_main.kvm_mmu_notifier_range(range_.start, range_.end,
                                           kvm_main.kvm_mmu_unmap_gfn_range,
                                           kvm_main.kvm_mmu_invalidate_begin, True,
                                           mn.mmu_notifier_range_blockable(range_))


def _end_range(kvm, range_):
    return kvm_main.kvm_mmu_notifier_range(range_.start, range_.end, kvm_main.kvm_null_fn,
                                           kvm_main.kvm_mmu_invalidate_end, False,
                                           mn.mmu_notifier_range_blockable(range_))


async def start_without_mn_invalidate_lock(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = _start_range(kvm, range_)
    # MUTANT: no spin_lock(&kvm->mn_invalidate_lock) / spin_unlock around count++
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    return 0


async def start_count_after_unlock(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = _start_range(kvm, range_)
    await spin_lock(kvm.mn_invalidate_lock)
    await spin_unlock(kvm.mn_invalidate_lock)
    # MUTANT: count++ moved after the unlock
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    return 0


async def start_count_after_walk(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = _start_range(kvm, range_)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    # MUTANT: count++ (under the lock) after the memslot walk instead of before it
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await spin_unlock(kvm.mn_invalidate_lock)
    return 0


async def end_without_wake(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    await kvm_main.kvm_handle_hva_range(kvm, _end_range(kvm, range_))
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    if not WARN_ON_ONCE(not count, "!kvm->mn_active_invalidate_count"):
        count -= 1
        await store(kvm, "mn_active_invalidate_count", count)
    await spin_unlock(kvm.mn_invalidate_lock)
    # MUTANT: no rcuwait_wake_up(&kvm->mn_memslots_update_rcuwait)


async def end_count_before_walk(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    # MUTANT: count-- and the wake-up moved before the mmu_lock walk
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    if not WARN_ON_ONCE(not count, "!kvm->mn_active_invalidate_count"):
        count -= 1
        await store(kvm, "mn_active_invalidate_count", count)
    wake = count == 0
    await spin_unlock(kvm.mn_invalidate_lock)
    if wake:
        await rcuwait_wake_up(kvm.mn_memslots_update_rcuwait)
    await kvm_main.kvm_handle_hva_range(kvm, _end_range(kvm, range_))


async def KVM_MMU_LOCK_read(kvm):
    await read_lock(kvm.mmu_lock)          # MUTANT: read_lock for write_lock


async def KVM_MMU_UNLOCK_read(kvm):
    await read_unlock(kvm.mmu_lock)        # MUTANT: read_unlock for write_unlock


async def invalidate_end_without_seq(kvm):
    # MUTANT: no kvm->mmu_invalidate_seq++ (in_progress-- alone)
    await Op((kvm, "mmu_invalidate_seq"), READ, "kvm->mmu_invalidate_seq")
    kvm.mmu_invalidate_in_progress -= 1
    await kvm_main.KVM_BUG_ON(kvm.mmu_invalidate_in_progress < 0,
                              "kvm->mmu_invalidate_in_progress < 0", kvm)
    WARN_ON_ONCE(kvm.mmu_invalidate_range_start == INVALID_GPA,
                 "kvm->mmu_invalidate_range_start == INVALID_GPA")


async def unmap_gfn_range_without_range_add(kvm, rng):
    # MUTANT: no kvm_mmu_invalidate_range_add()
    return await kvm_main.arch().kvm_unmap_gfn_range(kvm, rng)


async def swap_without_waiting(kvm, slots):
    await spin_lock(kvm.mn_invalidate_lock)
    # MUTANT: no wait for mn_active_invalidate_count to drop to zero
    await Op((kvm, "memslots"), WRITE, "rcu_assign_pointer(kvm->memslots[0], slots)")
    kvm.memslots = slots
    await spin_unlock(kvm.mn_invalidate_lock)
    await mutex_unlock(kvm.slots_arch_lock)
    await synchronize_srcu_expedited(kvm.srcu)


async def swap_wait_check_before_state(kvm, slots):
    """The lost wake-up: the count is checked, the lock dropped, and only then the task
    state set, so a wake-up in between is lost."""
    await spin_lock(kvm.mn_invalidate_lock)
    await prepare_to_rcuwait(kvm.mn_memslots_update_rcuwait)
    while await load(kvm, "mn_active_invalidate_count"):
        await spin_unlock(kvm.mn_invalidate_lock)
        await set_current_state(TASK_UNINTERRUPTIBLE)   # MUTANT: after the unlock
        await schedule()
        await spin_lock(kvm.mn_invalidate_lock)
    await finish_rcuwait(kvm.mn_memslots_update_rcuwait)
    await Op((kvm, "memslots"), WRITE, "rcu_assign_pointer(kvm->memslots[0], slots)")
    kvm.memslots = slots
    await spin_unlock(kvm.mn_invalidate_lock)
    await mutex_unlock(kvm.slots_arch_lock)
    await synchronize_srcu_expedited(kvm.srcu)


async def handle_hva_range_without_srcu(kvm, rng):
    found_memslot = False
    ret = False
    # MUTANT: no srcu_read_lock(&kvm->srcu) around the memslot walk
    slots = await kvm_main.rcu_dereference_memslots(kvm)
    for slot in slots.overlapping(rng.start, rng.end):
        lo, hi = slot.hva_range()
        gfn_range = kvm_main.kvm_gfn_range(slot, slot.hva_to_gfn(max(rng.start, lo)),
                                           slot.hva_to_gfn(min(rng.end, hi)), rng.may_block)
        if not found_memslot:
            found_memslot = True
            await kvm_main.KVM_MMU_LOCK(kvm)
            if rng.on_lock is not None:
                await rng.on_lock(kvm)
            if rng.handler is kvm_main.kvm_null_fn:
                break
        ret |= await rng.handler(kvm, gfn_range)
    if rng.flush_on_ret and ret:
        await kvm_main.arch().kvm_flush_remote_tlbs(kvm)
    if found_memslot:
        await kvm_main.KVM_MMU_UNLOCK(kvm)
    return found_memslot


async def release_without_zap(sub, mm):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    idx = await srcu_read_lock(kvm.srcu)
    # MUTANT: no kvm_flush_shadow_all(kvm)
    await srcu_read_unlock(kvm.srcu, idx)


# -- mm/mmu_notifier.c --------------------------------------------------------------------

async def hlist_start_without_non_block(subs, rng):
    ret = 0
    idx = await srcu_read_lock(mn.srcu())
    async for sub in hlist_for_each_entry_srcu(subs.list, mn.srcu_held()):
        if sub.ops.invalidate_range_start is None:
            continue
        # MUTANT: no non_block_start()/non_block_end() around a non-blockable callback
        _ret = await sub.ops.invalidate_range_start(sub, rng)
        if _ret:
            WARN_ON(_ret != -mn.EAGAIN or mn.mmu_notifier_range_blockable(rng),
                    "_ret != -EAGAIN || mmu_notifier_range_blockable(range)")
            WARN_ON(sub.ops.invalidate_range_end is not None, "ops->invalidate_range_end")
            ret = _ret
    if ret:
        async for sub in hlist_for_each_entry_srcu(subs.list, mn.srcu_held()):
            if sub.ops.invalidate_range_end is None:
                continue
            await sub.ops.invalidate_range_end(sub, rng)
    await srcu_read_unlock(mn.srcu(), idx)
    return ret


async def unregister_without_synchronize_srcu(sub, mm):
    BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
    if not await hlist_unhashed(sub.hlist):
        idx = await srcu_read_lock(mn.srcu())
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
        await srcu_read_unlock(mn.srcu(), idx)
        subs = mm.notifier_subscriptions
        await spin_lock(subs.lock)
        await hlist_del_init_rcu(sub.hlist)
        await spin_unlock(subs.lock)
    # MUTANT: no synchronize_srcu(&srcu)
    mmdrop(mm)


async def hlist_release_without_synchronize_srcu(subs, mm):
    idx = await srcu_read_lock(mn.srcu())
    async for sub in hlist_for_each_entry_srcu(subs.list, mn.srcu_held()):
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await spin_lock(subs.lock)
    while not await hlist_empty(subs.list):
        await hlist_del_init_rcu(hlist_entry(subs.list.first).hlist)
    await spin_unlock(subs.lock)
    await srcu_read_unlock(mn.srcu(), idx)
    # MUTANT: no synchronize_srcu(&srcu)


# -- arch/x86/kvm/mmu/mmu.c ---------------------------------------------------------------

def _x86():
    from kmodel.linux.arch.x86.kvm import mmu
    return mmu


async def tdp_page_fault_without_retry_check(vcpu, fault):
    mmu = _x86()
    kvm = vcpu.kvm
    r = await mmu.kvm_mmu_faultin_pfn(vcpu, fault)
    if r != mmu.RET_PF_CONTINUE:
        return r
    r = mmu.RET_PF_RETRY
    await read_lock(kvm.mmu_lock)
    if fault.slot:                         # MUTANT: no mmu_invalidate_retry_gfn()
        r = await mmu.kvm_tdp_mmu_map(vcpu, fault)
    await read_unlock(kvm.mmu_lock)
    await memory.put_page(fault.page)
    return r


async def tdp_page_fault_check_before_lock(vcpu, fault):
    mmu = _x86()
    kvm = vcpu.kvm
    r = await mmu.kvm_mmu_faultin_pfn(vcpu, fault)
    if r != mmu.RET_PF_CONTINUE:
        return r
    r = mmu.RET_PF_RETRY
    # MUTANT: the stale check before read_lock(&kvm->mmu_lock), not under it
    stale = bool(fault.slot and mmu.mmu_invalidate_retry_gfn(kvm, fault.mmu_seq, fault.gfn))
    await read_lock(kvm.mmu_lock)
    if not stale:
        r = await mmu.kvm_tdp_mmu_map(vcpu, fault)
    await read_unlock(kvm.mmu_lock)
    await memory.put_page(fault.page)
    return r


async def tdp_page_fault_put_page_early(vcpu, fault):
    mmu = _x86()
    kvm = vcpu.kvm
    r = await mmu.kvm_mmu_faultin_pfn(vcpu, fault)
    if r != mmu.RET_PF_CONTINUE:
        return r
    r = mmu.RET_PF_RETRY
    await memory.put_page(fault.page)      # MUTANT: reference dropped before the map
    await read_lock(kvm.mmu_lock)
    if not (fault.slot and mmu.mmu_invalidate_retry_gfn(kvm, fault.mmu_seq, fault.gfn)):
        r = await mmu.kvm_tdp_mmu_map(vcpu, fault)
    await read_unlock(kvm.mmu_lock)
    return r


# -- mm/memory.c, mm/oom_kill.c --------------------------------------------------------------

async def handle_mm_fault_without_mmf_unstable(vma, addr, write):
    if write and addr in vma.cow:
        return await memory.do_wp_page(vma, addr)
    await memory.pte_offset_map_lock(vma)
    await Op((vma, "ptes"), WRITE, f"do_anonymous_page({vma.name} @{addr})")
    if addr not in vma.ptes:
        # MUTANT: no check_stable_address_space() (test_bit(MMF_UNSTABLE))
        vma.ptes[addr] = memory.alloc_page()
    await memory.pte_unmap_unlock(vma)
    return True


def _reap_vma_ok(vma):
    if vma.vm_flags & {VM_HUGETLB, VM_PFNMAP}:
        return False
    return vma.is_anonymous() or VM_SHARED not in vma.vm_flags


async def reap_free_before_range_end(mm):
    ret = True
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):
        if not _reap_vma_ok(vma):
            continue
        rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=False)
        tlb = memory.tlb_gather_mmu(mm)
        if await mn.mmu_notifier_invalidate_range_start_nonblock(rng):
            await memory.tlb_finish_mmu(tlb)
            ret = False
            continue
        oom_kill.reaper_state().reaped_pages += await memory.unmap_page_range(
            tlb, vma, rng.start, rng.end)
        await memory.tlb_finish_mmu(tlb)   # MUTANT: pages freed before range_end
        await mn.mmu_notifier_invalidate_range_end(rng)
    return ret


async def reap_unmap_before_range_start(mm):
    ret = True
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):
        if not _reap_vma_ok(vma):
            continue
        rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=False)
        tlb = memory.tlb_gather_mmu(mm)
        # MUTANT: unmap and free first, then the invalidation around nothing
        oom_kill.reaper_state().reaped_pages += await memory.unmap_page_range(
            tlb, vma, rng.start, rng.end)
        await memory.tlb_finish_mmu(tlb)
        if await mn.mmu_notifier_invalidate_range_start_nonblock(rng):
            ret = False
            continue
        await mn.mmu_notifier_invalidate_range_end(rng)
    return ret


async def reap_skip_range_end(mm):
    ret = True
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):
        if not _reap_vma_ok(vma):
            continue
        rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=False)
        tlb = memory.tlb_gather_mmu(mm)
        if await mn.mmu_notifier_invalidate_range_start_nonblock(rng):
            await memory.tlb_finish_mmu(tlb)
            ret = False
            continue
        oom_kill.reaper_state().reaped_pages += await memory.unmap_page_range(
            tlb, vma, rng.start, rng.end)
        # MUTANT: no mmu_notifier_invalidate_range_end()
        await memory.tlb_finish_mmu(tlb)
    return ret


async def reap_blockable(mm):
    ret = True
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):
        if not _reap_vma_ok(vma):
            continue
        rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=True)
        tlb = memory.tlb_gather_mmu(mm)
        # MUTANT: the blockable start (might_sleep) instead of the _nonblock one
        await mn.mmu_notifier_invalidate_range_start(rng)
        oom_kill.reaper_state().reaped_pages += await memory.unmap_page_range(
            tlb, vma, rng.start, rng.end)
        await mn.mmu_notifier_invalidate_range_end(rng)
        await memory.tlb_finish_mmu(tlb)
    return ret


async def exit_mmap_without_release(mm):
    from kmodel.linux.kernel.locking.rwsem import down_read, down_write, up_read, up_write
    from kmodel.linux.mm.mm_types import MMF_OOM_SKIP
    # MUTANT: no mmu_notifier_release(mm)
    await down_read(mm.mmap_lock)
    tlb = memory.tlb_gather_mmu(mm)
    for vma in mm.vmas:
        await memory.unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end)
    await up_read(mm.mmap_lock)
    await set_bit(MMF_OOM_SKIP, mm)
    await down_write(mm.mmap_lock)
    await memory.tlb_finish_mmu(tlb)
    mm.vmas.clear()
    await up_write(mm.mmap_lock)


MUTANTS: dict[str, Mutant] = {
    "start-no-mn_invalidate_lock": Mutant(
        "kvm_mmu_notifier_invalidate_range_start: drop the mn_invalidate_lock lock/unlock "
        "pair around count++",
        {"kvm_mmu_notifier_invalidate_range_start": start_without_mn_invalidate_lock}),
    "start-count-outside-lock": Mutant(
        "kvm_mmu_notifier_invalidate_range_start: count++ after spin_unlock",
        {"kvm_mmu_notifier_invalidate_range_start": start_count_after_unlock}),
    "start-count-after-walk": Mutant(
        "kvm_mmu_notifier_invalidate_range_start: count++ after the memslot walk",
        {"kvm_mmu_notifier_invalidate_range_start": start_count_after_walk}),
    "end-no-wake": Mutant(
        "kvm_mmu_notifier_invalidate_range_end: drop rcuwait_wake_up",
        {"kvm_mmu_notifier_invalidate_range_end": end_without_wake}),
    "end-count-before-walk": Mutant(
        "kvm_mmu_notifier_invalidate_range_end: count-- and wake before the mmu_lock walk",
        {"kvm_mmu_notifier_invalidate_range_end": end_count_before_walk}),
    "mmu_lock-read-for-write": Mutant(
        "KVM_MMU_LOCK/KVM_MMU_UNLOCK: read_lock where the kernel takes write_lock",
        {"KVM_MMU_LOCK": KVM_MMU_LOCK_read, "KVM_MMU_UNLOCK": KVM_MMU_UNLOCK_read}),
    "invalidate-end-no-seq++": Mutant(
        "kvm_mmu_invalidate_end: in_progress-- without mmu_invalidate_seq++",
        {"kvm_mmu_invalidate_end": invalidate_end_without_seq}),
    "unmap-no-range-add": Mutant(
        "kvm_mmu_unmap_gfn_range: drop kvm_mmu_invalidate_range_add",
        {"kvm_mmu_unmap_gfn_range": unmap_gfn_range_without_range_add}),
    "swap-no-wait": Mutant(
        "kvm_swap_active_memslots: publish without waiting for the count",
        {"kvm_swap_active_memslots": swap_without_waiting}),
    "swap-lost-wakeup": Mutant(
        "kvm_swap_active_memslots: set_current_state after dropping the lock",
        {"kvm_swap_active_memslots": swap_wait_check_before_state}),
    "hva-range-no-srcu": Mutant(
        "kvm_handle_hva_range: no kvm->srcu read section around the memslot walk",
        {"kvm_handle_hva_range": handle_hva_range_without_srcu}),
    "release-no-zap": Mutant(
        "kvm_mmu_notifier_release: no kvm_flush_shadow_all",
        {"kvm_mmu_notifier_release": release_without_zap}),
    "hlist-start-no-non_block": Mutant(
        "mn_hlist_invalidate_range_start: forget non_block_start/non_block_end",
        {"mn_hlist_invalidate_range_start": hlist_start_without_non_block}),
    "unregister-no-synchronize_srcu": Mutant(
        "mmu_notifier_unregister: drop synchronize_srcu",
        {"mmu_notifier_unregister": unregister_without_synchronize_srcu}),
    "release-no-synchronize_srcu": Mutant(
        "mn_hlist_release: drop synchronize_srcu",
        {"mn_hlist_release": hlist_release_without_synchronize_srcu}),
    "x86-fault-no-retry-check": Mutant(
        "kvm_tdp_page_fault: skip mmu_invalidate_retry_gfn",
        {"kvm_tdp_page_fault": tdp_page_fault_without_retry_check}),
    "x86-fault-check-outside-lock": Mutant(
        "kvm_tdp_page_fault: the retry check before read_lock(mmu_lock)",
        {"kvm_tdp_page_fault": tdp_page_fault_check_before_lock}),
    "x86-fault-put-page-early": Mutant(
        "kvm_tdp_page_fault: kvm_release_faultin_page before the map",
        {"kvm_tdp_page_fault": tdp_page_fault_put_page_early}),
    "fault-no-MMF_UNSTABLE": Mutant(
        "__handle_mm_fault: drop the MMF_UNSTABLE check (check_stable_address_space)",
        {"__handle_mm_fault": handle_mm_fault_without_mmf_unstable}),
    "reap-free-before-range_end": Mutant(
        "__oom_reap_task_mm: tlb_finish_mmu (free) before range_end",
        {"__oom_reap_task_mm": reap_free_before_range_end}),
    "reap-unmap-before-range_start": Mutant(
        "__oom_reap_task_mm: unmap and free before range_start",
        {"__oom_reap_task_mm": reap_unmap_before_range_start}),
    "reap-no-range_end": Mutant(
        "__oom_reap_task_mm: drop mmu_notifier_invalidate_range_end",
        {"__oom_reap_task_mm": reap_skip_range_end}),
    "reap-blockable": Mutant(
        "__oom_reap_task_mm: blockable invalidation instead of _nonblock",
        {"__oom_reap_task_mm": reap_blockable}),
    "exit_mmap-no-release": Mutant(
        "exit_mmap: drop mmu_notifier_release",
        {"exit_mmap": exit_mmap_without_release}),
}
