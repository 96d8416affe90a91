"""Sean Christopherson's hack to simulate a non-blockable invalidation (2026-02-11): KVM's
range_start uses may_block = false and wraps the memslot walk in non_block_start()/
non_block_end(), so any invalidation -- a CoW fault in a vCPU's GUP -- shows the splat."""

from kmodel.linux.include.rwonce import load, store
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.include.kernel import non_block_end, non_block_start
from kmodel.linux.virt.kvm import kvm_main, pfncache
from kmodel.patching import Patch

patch = Patch(
    name="sean-nonblock-hack",
    title="hack to simulate a non-blockable invalidation",
    author="Sean Christopherson", date="2026-02-11",
    summary="A debugging aid from the thread, not a design.",
)


@patch.override("kvm_mmu_notifier_invalidate_range_start")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = kvm_main.kvm_mmu_notifier_range(
        range_.start, range_.end, kvm_main.kvm_mmu_unmap_gfn_range,
        kvm_main.kvm_mmu_invalidate_begin, True, False)    # .may_block = false
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await spin_unlock(kvm.mn_invalidate_lock)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    non_block_start()
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    non_block_end()
    return 0
