"""Sebastian Andrzej Siewior's review of v1 (2026-02-11): make mn_active_invalidate_count
an atomic_t (atomic_inc in start, atomic_dec_return in end) and keep the lock only around
what needs it -- so start no longer excludes a memslot swap.  Sean's reply: "simply making
mn_active_invalidate_count an atomic won't suffice, because KVM needs to block start() to
ensure start()+end() see the exact same set of memslots."
"""

from kmodel.engine import WRITE, Op
from kmodel.linux.include.rwonce import READ_ONCE, atomic_rmw
from kmodel.linux.kernel.locking.mutex import mutex_unlock
from kmodel.linux.kernel.panic import WARN_ON_ONCE
from kmodel.linux.kernel.rcu.srcu import synchronize_srcu_expedited
from kmodel.linux.kernel.rcuwait import finish_rcuwait, prepare_to_rcuwait, rcuwait_wake_up
from kmodel.linux.kernel.sched import TASK_UNINTERRUPTIBLE, schedule, set_current_state
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main, pfncache
from kmodel.patching import Patch

patch = Patch(
    name="atomic-count",
    title="mn_active_invalidate_count as an atomic_t, no lock around start",
    author="Sebastian Andrzej Siewior", date="2026-02-11",
    summary="atomic_inc/atomic_dec_return; the swap only waits for the count.",
)


@patch.override("kvm_mmu_notifier_invalidate_range_start")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = kvm_main.kvm_mmu_notifier_range(
        range_.start, range_.end, kvm_main.kvm_mmu_unmap_gfn_range,
        kvm_main.kvm_mmu_invalidate_begin, True, mn.mmu_notifier_range_blockable(range_))
    await atomic_rmw(kvm, "mn_active_invalidate_count", lambda c: c + 1,
                     "atomic_inc(&kvm->mn_active_invalidate_count)")
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_main.kvm_handle_hva_range(kvm, hva_range):
        kvm_main.kvm_arch_guest_memory_reclaimed(kvm)
    return 0


@patch.override("kvm_mmu_notifier_invalidate_range_end")
async def kvm_mmu_notifier_invalidate_range_end(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = kvm_main.kvm_mmu_notifier_range(
        range_.start, range_.end, kvm_main.kvm_null_fn, kvm_main.kvm_mmu_invalidate_end,
        False, mn.mmu_notifier_range_blockable(range_))
    await kvm_main.kvm_handle_hva_range(kvm, hva_range)
    wake = await atomic_rmw(kvm, "mn_active_invalidate_count", lambda c: c - 1,
                            "atomic_dec_return(&kvm->mn_active_invalidate_count)")
    WARN_ON_ONCE(wake < 0, "wake < 0")
    if wake == 0:
        await rcuwait_wake_up(kvm.mn_memslots_update_rcuwait)


@patch.override("kvm_swap_active_memslots")
async def kvm_swap_active_memslots(kvm, slots):
    # The wait is written the safe way (state first, then the check, as
    # rcuwait_wait_event does): the design's question is the memslots, not a lost wake-up.
    await prepare_to_rcuwait(kvm.mn_memslots_update_rcuwait)
    while True:
        await set_current_state(TASK_UNINTERRUPTIBLE)
        if not await READ_ONCE(kvm, "mn_active_invalidate_count",
                               "atomic_read(&kvm->mn_active_invalidate_count)"):
            break
        await schedule()
    await finish_rcuwait(kvm.mn_memslots_update_rcuwait)
    await Op((kvm, "memslots"), WRITE, "rcu_assign_pointer(kvm->memslots[0], slots)")
    kvm.memslots = slots
    await mutex_unlock(kvm.slots_arch_lock)
    await synchronize_srcu_expedited(kvm.srcu)
