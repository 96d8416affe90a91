"""What Sean Christopherson said a real fix would take (2026-02-11): v1, plus mmu_lock --
and, on x86, the pfn-cache locks that a non-blockable start also takes -- as locks that
stay spinning under PREEMPT_RT.  Not a posted patch: the thread's "convert locks to raw"
direction, taken to where the splat goes away, so its cost can be measured (the longest
non-preemptible section grows with the guest memory zapped under mmu_lock).
"""

from kmodel.linux.kernel.locking.spinlock import raw_rwlock_t, raw_spin_lock, \
    raw_spin_unlock, raw_spinlock_t, read_lock_irq, read_unlock_irq, write_lock_irq, \
    write_unlock_irq
from kmodel.linux.kernel.core import kernel
from kmodel.patching import Patch
from kmodel.patches import v1_raw_mn_lock

patch = Patch(
    name="raw-mmu-lock",
    title="v1 plus mmu_lock, gpc_lock and gpc->lock as raw (non-sleeping) locks",
    author="Sean Christopherson (as the requirement)", date="2026-02-11",
    summary="Every lock a non-blockable invalidation takes stays spinning on RT.",
)
patch.overrides.update(v1_raw_mn_lock.patch.overrides)
_v1_create = v1_raw_mn_lock.kvm_create_vm


@patch.override("kvm_create_vm")
def kvm_create_vm(mm, slots, gpc_uhvas=()):
    kvm = _v1_create(mm, slots, gpc_uhvas)
    kvm.mmu_lock = raw_rwlock_t("&kvm->mmu_lock")
    kvm.gpc_lock = raw_spinlock_t("&kvm->gpc_lock")
    for gpc in kvm.gpc_list:
        gpc.lock = raw_rwlock_t("&gpc->lock")
    return kvm


@patch.override("gfn_to_pfn_cache_invalidate_start")
async def gfn_to_pfn_cache_invalidate_start(kvm, start, end):
    if kernel().arch != "x86":
        return
    await raw_spin_lock(kvm.gpc_lock)
    for gpc in kvm.gpc_list:
        await read_lock_irq(gpc.lock)
        if gpc.valid and start <= gpc.uhva < end:
            await read_unlock_irq(gpc.lock)
            await write_lock_irq(gpc.lock)
            if gpc.valid and start <= gpc.uhva < end:
                gpc.valid = False
            await write_unlock_irq(gpc.lock)
            continue
        await read_unlock_irq(gpc.lock)
    await raw_spin_unlock(kvm.gpc_lock)
