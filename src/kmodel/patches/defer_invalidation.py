"""shaikh kamaluddin, 2026-03-03: "handle the !blockable notifier case by deferring the
heavyweight invalidation work (anything that takes mmu_lock/may sleep on RT) to a context
that may block (e.g. queued work), while keeping start()/end() accounting consistent
with memslot changes".  Modelled on top of v1 (the accounting under the raw
mn_invalidate_lock stays synchronous): a non-blockable start counts itself and queues the
pfn-cache and SPTE invalidation on an ordered workqueue; the matching end queues the end
half behind it, and that work drops the count.  Sean (2026-03-06): "Deferring the
invalidations when we're OOM is likely to make the problem *worse*."
"""

from kmodel.linux.include.rwonce import load, store
from kmodel.linux.kernel.locking.spinlock import raw_spin_lock, raw_spin_unlock
from kmodel.linux.kernel.panic import WARN_ON_ONCE
from kmodel.linux.kernel.rcuwait import rcuwait_wake_up
from kmodel.linux.kernel.workqueue import queue_work_ordered, work_struct, \
    workqueue_struct
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main, pfncache
from kmodel.patches import v1_raw_mn_lock
from kmodel.patching import Patch

patch = Patch(
    name="defer-invalidation",
    title="defer the heavyweight part of a non-blockable invalidation to a workqueue",
    author="shaikh kamaluddin", date="2026-03-03",
    summary="Start/end accounting stays synchronous; the zap runs later in a kworker.",
)
patch.overrides.update(v1_raw_mn_lock.patch.overrides)
_v1_start = v1_raw_mn_lock.kvm_mmu_notifier_invalidate_range_start
_v1_end = v1_raw_mn_lock.kvm_mmu_notifier_invalidate_range_end


class _deferred(work_struct):
    def __init__(self, kvm, start, end, half):
        super().__init__(kvm_mmu_notifier_deferred_work, f"kvm_mn_deferred_{half}")
        self.kvm, self.start, self.end, self.half = kvm, start, end, half


def _wq(kvm):
    """The VM's ordered workqueue: the end half of a range runs after its start half."""
    if getattr(kvm, "mn_deferred_wq", None) is None:
        kvm.mn_deferred_wq = workqueue_struct("kvm-mn-deferred")
    return kvm.mn_deferred_wq


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_deferred_work(work):
    kvm = work.kvm
    if work.half == "start":
        await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, work.start, work.end)
        await kvm_main.kvm_handle_hva_range(kvm, kvm_main.kvm_mmu_notifier_range(
            work.start, work.end, kvm_main.kvm_mmu_unmap_gfn_range,
            kvm_main.kvm_mmu_invalidate_begin, True, True))
    else:
        await kvm_main.kvm_handle_hva_range(kvm, kvm_main.kvm_mmu_notifier_range(
            work.start, work.end, kvm_main.kvm_null_fn, kvm_main.kvm_mmu_invalidate_end,
            False, True))
        await raw_spin_lock(kvm.mn_invalidate_lock)
        count = await load(kvm, "mn_active_invalidate_count")
        if not WARN_ON_ONCE(not count, "!kvm->mn_active_invalidate_count"):
            count -= 1
            await store(kvm, "mn_active_invalidate_count", count)
        await raw_spin_unlock(kvm.mn_invalidate_lock)
        if count == 0:
            await rcuwait_wake_up(kvm.mn_memslots_update_rcuwait)


@patch.override("kvm_mmu_notifier_invalidate_range_start")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
    if mn.mmu_notifier_range_blockable(range_):
        return await _v1_start(sub, range_)
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    await raw_spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await raw_spin_unlock(kvm.mn_invalidate_lock)
    await queue_work_ordered(_wq(kvm), _deferred(kvm, range_.start, range_.end, "start"))
    return 0


@patch.override("kvm_mmu_notifier_invalidate_range_end")
async def kvm_mmu_notifier_invalidate_range_end(sub, range_):
    if mn.mmu_notifier_range_blockable(range_):
        return await _v1_end(sub, range_)
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    await queue_work_ordered(_wq(kvm), _deferred(kvm, range_.start, range_.end, "end"))
