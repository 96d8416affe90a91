"""[PATCH v2 1/1] mm/mmu_notifier: Add async OOM cleanup via call_srcu() -- shaikh.kamal,
2026-04-29 (resent 2026-04-30).  __oom_reap_task_mm() first calls
mmu_notifier_oom_enter(): subscribers with ->after_oom_unregister are unhashed and
released under srcu; each then gets a GFP_ATOMIC callback queued with call_srcu() that
runs ->after_oom_unregister and mmdrop() after a grace period (a failed allocation skips
it).  mmu_notifier_barrier() is srcu_barrier().  kvm_destroy_vm() sees the unhashed
subscription and waits with mmu_notifier_barrier() instead of unregistering.  The header
declares mmu_notifier_oom_enter() only with CONFIG_MMU_NOTIFIER, without a stub (the
kernel test robot, 2026-05-03).

Transcribed from the diff in the 2026-04-29 mail: the subscriptions are unlinked with
hlist_del_init_rcu() and re-linked onto the on-stack ``oom_list`` with hlist_add_head()
(so hlist_unhashed() is false again until the hlist_del_init() before call_srcu), every
list change and walk through the kernel's hlist helpers, pointer by pointer.
Deviation: the load of ``cb->subscription->ops`` in the callback is not a visible access,
so a KASAN report on a freed subscription names the callee, not the callback.
"""

from kmodel.linux.include.list import HLIST_HEAD, frame_returned, hlist_add_head, \
    hlist_del_init, hlist_empty, hlist_for_each_entry, hlist_for_each_entry_safe, \
    hlist_unhashed
from kmodel.linux.include.rculist import hlist_del_init_rcu
from kmodel.linux.include.bitops import set_bit
from kmodel.linux.include.sched_mm import mmdrop, mmgrab
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.kernel.panic import WARN_ON, WARN_ON_ONCE
from kmodel.linux.kernel.rcu.srcu import call_srcu, srcu_barrier
from kmodel.linux.mm import memory, mmu_notifier as mn, oom_kill
from kmodel.linux.mm.mm_types import MMF_UNSTABLE, VM_HUGETLB, VM_PFNMAP, VM_SHARED
from kmodel.linux.mm.slab import GFP_ATOMIC, kfree, kmalloc
from kmodel.linux.virt.kvm import kvm_main
from kmodel.patches import _oom_hooks
from kmodel.patching import Patch

patch = Patch(
    name="v2-call-srcu",
    title="mm/mmu_notifier: Add async OOM cleanup via call_srcu()",
    author="shaikh.kamal", date="2026-04-29",
    summary="mmu_notifier_oom_enter() from __oom_reap_task_mm; after_oom_unregister via "
            "call_srcu(); kvm_destroy_vm waits with srcu_barrier().",
)


@patch.new_function("mm/mmu_notifier.c")
async def mmu_notifier_oom_callback_fn(cb):
    await cb.subscription.ops.after_oom_unregister(cb.subscription, cb.mm)
    WARN_ON_ONCE(cb.mm.mm_count <= 0, "atomic_read(&cb->mm->mm_count) <= 0")
    mmdrop(cb.mm)
    kfree(cb)


@patch.new_function("mm/mmu_notifier.c", config="MMU_NOTIFIER", stub=False)
async def mmu_notifier_oom_enter(mm):
    subs = mm.notifier_subscriptions
    oom_list = HLIST_HEAD("oom_list")
    if subs is None:
        return
    idx = await mn.srcu_read_lock(mn.srcu())
    # "Prevent further calls to the MMU notifier, except for release and
    # after_oom_unregister."
    await spin_lock(subs.lock)
    async for sub in hlist_for_each_entry_safe(subs.list):
        if getattr(sub.ops, "after_oom_unregister", None) is None:
            continue
        if WARN_ON(sub.ops.alloc_notifier is not None, "subscription->ops->alloc_notifier"):
            continue
        await hlist_del_init_rcu(sub.hlist)
        await hlist_add_head(sub.hlist, oom_list)
    await spin_unlock(subs.lock)
    async for sub in hlist_for_each_entry(oom_list):
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await mn.srcu_read_unlock(mn.srcu(), idx)
    if await hlist_empty(oom_list):
        frame_returned(oom_list)
        return
    async for sub in hlist_for_each_entry_safe(oom_list):
        # "Remove from stack-based oom_list and reset hlist to unhashed state."
        await hlist_del_init(sub.hlist)
        cb = await kmalloc("struct mmu_notifier_oom_callback", GFP_ATOMIC)
        if cb is None:
            continue                     # "cleanup will eventually happen via unregister"
        cb.subscription, cb.mm = sub, mm
        mmgrab(mm)
        await call_srcu(mn.srcu(), mmu_notifier_oom_callback_fn, cb,
                        "mmu_notifier_oom_callback_fn")
    frame_returned(oom_list)


@patch.new_function("mm/mmu_notifier.c", config="MMU_NOTIFIER", stub=False)
async def mmu_notifier_barrier():
    await srcu_barrier(mn.srcu())


@patch.override("__oom_reap_task_mm")
async def __oom_reap_task_mm(mm):
    ret = True
    await mmu_notifier_oom_enter(mm)     # "Notify MMU notifiers about the OOM event"
    await set_bit(MMF_UNSTABLE, mm)
    for vma in list(reversed(mm.vmas)):
        if vma.vm_flags & {VM_HUGETLB, VM_PFNMAP}:
            continue
        if vma.is_anonymous() or VM_SHARED not in vma.vm_flags:
            rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=False)
            tlb = memory.tlb_gather_mmu(mm)
            if await mn.mmu_notifier_invalidate_range_start_nonblock(rng):
                await memory.tlb_finish_mmu(tlb)
                ret = False
                continue
            oom_kill.reaper_state().reaped_pages += await memory.unmap_page_range(
                tlb, vma, rng.start, rng.end)
            await mn.mmu_notifier_invalidate_range_end(rng)
            await memory.tlb_finish_mmu(tlb)
    return ret


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_after_oom_unregister(sub, mm):
    await _oom_hooks.kvm_fixup_counts(kvm_main.mmu_notifier_to_kvm(sub))


patch.set(kvm_main.kvm_mmu_notifier_ops, "after_oom_unregister",
          kvm_mmu_notifier_after_oom_unregister)


@patch.override("kvm_destroy_vm")
async def kvm_destroy_vm(kvm):
    if await hlist_unhashed(kvm.mmu_notifier.hlist):
        await mmu_notifier_barrier()      # "Subscription removed by OOM"
        mmdrop(kvm.mm)
    else:
        await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
    await _oom_hooks.kvm_fixup_counts(kvm)
    await _oom_hooks.kvm_destroy_vm_tail(kvm)
