"""[PATCH] KVM: mmu_notifier: make mn_invalidate_lock non-sleeping for non-blocking
invalidations -- shaikh.kamal, 2026-02-09.

mn_invalidate_lock becomes a raw_spinlock_t: kvm_create_vm initialises it raw, and range
start, range end and kvm_swap_active_memslots take it with raw_spin_lock().
"""

from kmodel.linux.kernel.locking.mutex import mutex_unlock
from kmodel.linux.kernel.locking.spinlock import raw_spin_lock, raw_spin_unlock, \
    raw_spinlock_t
from kmodel.linux.include.rwonce import load, store
from kmodel.linux.kernel.panic import WARN_ON_ONCE
from kmodel.linux.kernel.rcu.srcu import synchronize_srcu_expedited
from kmodel.linux.kernel.rcuwait import finish_rcuwait, prepare_to_rcuwait, rcuwait_wake_up
from kmodel.linux.kernel.sched import TASK_UNINTERRUPTIBLE, schedule, set_current_state
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_host, kvm_main, pfncache
from kmodel.engine import WRITE, Op
from kmodel.patching import Patch

patch = Patch(
    name="v1-raw-mn-lock",
    title="KVM: mmu_notifier: make mn_invalidate_lock non-sleeping for non-blocking "
          "invalidations",
    author="shaikh.kamal", date="2026-02-09",
    summary="mn_invalidate_lock becomes a raw_spinlock_t.  Sean: insufficient, mmu_lock "
            "(and more) would have to be raw too; NAK.",
)

_create = kvm_host.kvm_create_vm.impl


@patch.override("kvm_create_vm")
def kvm_create_vm(mm, slots, gpc_uhvas=()):
    kvm = _create(mm, slots, gpc_uhvas)
    kvm.mn_invalidate_lock = raw_spinlock_t("&kvm->mn_invalidate_lock")   # raw_spin_lock_init
    return kvm


@patch.override("kvm_mmu_notifier_invalidate_range_start")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    hva_range = kvm_main.kvm_mmu_notifier_range(
        range_.start, range_.end, kvm_main.kvm_mmu_unmap_gfn_range,
        kvm_main.kvm_mmu_invalidate_begin, True, mn.mmu_notifier_range_blockable(range_))
    await raw_spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await raw_spin_unlock(kvm.mn_invalidate_lock)
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
    await raw_spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    if not WARN_ON_ONCE(not count, "!kvm->mn_active_invalidate_count"):
        count -= 1
        await store(kvm, "mn_active_invalidate_count", count)
    wake = count == 0
    await raw_spin_unlock(kvm.mn_invalidate_lock)
    if wake:
        await rcuwait_wake_up(kvm.mn_memslots_update_rcuwait)


@patch.override("kvm_swap_active_memslots")
async def kvm_swap_active_memslots(kvm, slots):
    await raw_spin_lock(kvm.mn_invalidate_lock)
    await prepare_to_rcuwait(kvm.mn_memslots_update_rcuwait)
    while await load(kvm, "mn_active_invalidate_count"):
        await set_current_state(TASK_UNINTERRUPTIBLE)
        await raw_spin_unlock(kvm.mn_invalidate_lock)
        await schedule()
        await raw_spin_lock(kvm.mn_invalidate_lock)
    await finish_rcuwait(kvm.mn_memslots_update_rcuwait)
    await Op((kvm, "memslots"), WRITE, "rcu_assign_pointer(kvm->memslots[0], slots)")
    kvm.memslots = slots
    await raw_spin_unlock(kvm.mn_invalidate_lock)
    await mutex_unlock(kvm.slots_arch_lock)
    await synchronize_srcu_expedited(kvm.srcu)
