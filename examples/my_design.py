"""An example design: KVM refuses non-blockable invalidations.

Instead of taking mn_invalidate_lock (a sleeping lock on PREEMPT_RT) from the OOM
reaper's non-blockable invalidation, kvm_mmu_notifier_invalidate_range_start() returns
-EAGAIN when the range is not blockable, as the mmu_notifier contract allows: the reaper
then skips the VMA and leaves it to exit_mmap().

This file overrides one function, a copy of the upstream model's
kvm_mmu_notifier_invalidate_range_start (src/kmodel/linux/virt/kvm/kvm_main.py) with the
early return added.  Check it with

    kmodel check --patch examples/my_design.py --scenario oom-reap
    kmodel explain examples/my_design.py
"""

from kmodel.linux.include.rwonce import load, store
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main, pfncache
from kmodel.patching import Patch

patch = Patch(
    name="my-eagain",
    title="KVM: return -EAGAIN from non-blockable invalidate_range_start",
    author="you", date="2026-05-01",
    summary="range_start fails a non-blockable invalidation instead of taking "
            "mn_invalidate_lock; the OOM reaper skips the VMA.",
)


@patch.override("kvm_mmu_notifier_invalidate_range_start")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
    if not mn.mmu_notifier_range_blockable(range_):
        return -mn.EAGAIN                      # the new part: never sleep here
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = kvm_main.kvm_mmu_notifier_range(
        range_.start, range_.end, kvm_main.kvm_mmu_unmap_gfn_range,
        kvm_main.kvm_mmu_invalidate_begin, True, mn.mmu_notifier_range_blockable(range_))
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await spin_unlock(kvm.mn_invalidate_lock)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    return 0
