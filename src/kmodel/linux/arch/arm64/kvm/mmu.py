"""arch/arm64/kvm/mmu.c, nested.c, hyp/pgtable.c and arm.c: stage-2 faults, unmapping
and teardown.

user_mem_abort snapshots mmu_invalidate_seq under mmap_read_lock, faults the page in,
takes mmu_lock for *read* (kvm_fault_lock, without pKVM), reads the stage-2 table
pointer vcpu->arch.hw_mmu->pgt and checks the range-less mmu_invalidate_retry: while any
invalidation is in progress, every fault retries.  kvm_unmap_gfn_range does its own TLB
maintenance and returns false; on a table already torn down it does nothing
(stage2_apply_range stops at a NULL pgt).

->release (kvm_mmu_notifier_release -> kvm_flush_shadow_all -> kvm_arch_flush_shadow_all)
tears the stage-2 table down rather than zapping it as x86 does: kvm_free_stage2_pgd
clears mmu->pgt under the write side of mmu_lock, then destroys the table (every leaf,
so every page it mapped) *outside* mmu_lock, and frees it.  Nothing bumps
mmu_invalidate_seq, so a fault that runs after it passes mmu_invalidate_retry and hands
the NULL pgt to kvm_pgtable_stage2_map: a kernel NULL pointer dereference in the table
walk -- the hole Sean Christopherson pointed at in 2021 ("nothing in user_mem_abort()
would prevent consuming that null mmu->pgt if exit_mmap() collided with
user_mem_abort()").  In upstream no vCPU can fault then (release runs from exit_mmap
after the last thread left the mm, or from kvm_destroy_vm after the last vCPU fd went);
a design that runs ->release earlier is where it shows.

Read against arch/arm64/kvm/mmu.c, nested.c and hyp/pgtable.c as quoted in 2025 arm64
patch mail (kvm_free_stage2_pgd, user_mem_abort under kvm_fault_lock, gmem_abort).
Simplified: nested stage-2 MMUs (kvm_uninit_nested_s2_mmus) and pKVM are not modelled;
the table is one object, its leaves the model's SPTE map.
"""

from __future__ import annotations

from .....engine import READ, Op
from ....kernel.core import kfunc
from ....kernel.locking.rwsem import down_read, up_read
from ....kernel.locking.spinlock import read_lock, read_unlock, write_lock, write_unlock
from ....kernel.rcu.srcu import srcu_read_lock, srcu_read_unlock
from ....mm import memory
from ....mm.slab import kfree
from ...fault import null_pointer_dereference
from ....virt.kvm import kvm_main, spte
from ....virt.kvm.kvm_vcpu import vcpu_run
from ....virt.kvm.kvm_host import KVM_MEMSLOT_INVALID
from ....virt.kvm.kvm_vcpu import EFAULT, RET_PF_FIXED, RET_PF_RETRY


class kvm_pgtable:
    """arch/arm64/include/asm/kvm_pgtable.h: struct kvm_pgtable; ia_bits is its first
    field (offset 0), the first thing a walk reads."""
    cname = "kvm_pgtable"

    def __init__(self):
        self.ia_bits = 40


def stage2_pgt(kvm):
    """kvm->arch.mmu.pgt (created with the VM by kvm_init_stage2_mmu)."""
    if not hasattr(kvm.arch, "pgt"):
        kvm.arch.pgt = kvm_pgtable()
    return kvm.arch.pgt


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_unmap_gfn_range(kvm, rng) -> bool:
    """mmu.c: __unmap_stage2_range -> stage2_apply_range, which stops if the table is
    gone (mmu->pgt == NULL)."""
    if stage2_pgt(kvm) is None:
        return False
    await spte.zap(kvm, rng.start, rng.end, f"__unmap_stage2_range(gfn [{rng.start:#x}, {rng.end:#x}))")
    return False


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_flush_remote_tlbs(kvm) -> None:
    pass


@kfunc("arch/arm64/kvm/nested.c")
async def kvm_arch_flush_shadow_all(kvm) -> None:
    """nested.c: free the nested stage-2 MMUs (none here), then the VM's own:
    kvm_uninit_stage2_mmu."""
    await kvm_uninit_stage2_mmu(kvm)


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_uninit_stage2_mmu(kvm) -> None:
    """mmu.c: kvm_free_stage2_pgd(&kvm->arch.mmu), then free the split page cache (not
    modelled)."""
    await kvm_free_stage2_pgd(kvm)


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_free_stage2_pgd(kvm) -> None:
    """mmu.c: under write mmu_lock take the table and clear mmu->pgt (and pgd_phys);
    then, with the lock dropped, destroy the table and kfree it.  A second call (from
    kvm_destroy_vm after ->release already ran) finds NULL and does nothing."""
    await write_lock(kvm.mmu_lock)
    pgt = stage2_pgt(kvm)
    if pgt is not None:
        kvm.arch.pgt = None                  # mmu->pgd_phys = 0; mmu->pgt = NULL
    await write_unlock(kvm.mmu_lock)
    if pgt is not None:
        await kvm_pgtable_stage2_destroy(kvm, pgt)
        kfree(pgt)


@kfunc("arch/arm64/kvm/hyp/pgtable.c")
async def kvm_pgtable_stage2_destroy(kvm, pgt) -> None:
    """hyp/pgtable.c: walk the whole table dropping every leaf (the page references the
    table held) and free the table pages; no lock is held -- the table is no longer
    reachable through mmu->pgt."""
    await spte.zap(kvm, 0, 1 << 60, "kvm_pgtable_stage2_destroy()")


@kfunc("arch/arm64/kvm/hyp/pgtable.c")
async def kvm_pgtable_stage2_map(vcpu, pgt, gfn: int, page) -> None:
    """hyp/pgtable.c: kvm_pgtable_stage2_map -> kvm_pgtable_walk, whose first access is
    pgt->ia_bits (the walk's limit): a NULL pgt is a kernel NULL pointer dereference."""
    if pgt is None:
        null_pointer_dereference("kvm_pgtable_walk: BIT(pgt->ia_bits), "
                                 "pgt == vcpu->arch.hw_mmu->pgt == NULL", 0, False)
    await spte.install(vcpu.kvm, gfn, page, f"kvm_pgtable_stage2_map(gfn {gfn:#x})")


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_arch_flush_shadow_memslot(kvm, slot) -> None:
    """mmu.c: kvm_stage2_unmap_range over the slot under write mmu_lock (nothing once
    the table is gone: stage2_apply_range stops at a NULL pgt)."""
    await write_lock(kvm.mmu_lock)
    if stage2_pgt(kvm) is not None:
        await spte.zap(kvm, slot.base_gfn, slot.base_gfn + slot.npages,
                       f"kvm_stage2_unmap_range(slot {slot.id})")
    await write_unlock(kvm.mmu_lock)


def mmu_invalidate_retry(kvm, mmu_seq: int) -> bool:
    """include/linux/kvm_host.h: mmu_invalidate_retry: any invalidation in progress, or
    the sequence moved."""
    if kvm.mmu_invalidate_in_progress:
        return True
    return kvm.mmu_invalidate_seq != mmu_seq


@kfunc("arch/arm64/kvm/mmu.c")
async def user_mem_abort(vcpu, gfn: int, write: bool) -> int:
    kvm = vcpu.kvm
    mm = kvm.mm
    await down_read(mm.mmap_lock)
    await Op((kvm, "mmu_invalidate_seq"), READ, "mmu_seq = kvm->mmu_invalidate_seq")
    mmu_seq = kvm.mmu_invalidate_seq
    await up_read(mm.mmap_lock)
    await Op((kvm, "memslots"), READ, "gfn_to_memslot()")
    slot = kvm.memslots.find_gfn(gfn)
    if slot is None or KVM_MEMSLOT_INVALID in slot.flags:
        return RET_PF_RETRY
    page = await kvm_main.__kvm_faultin_pfn(slot, mm, gfn, write)
    if page is None or isinstance(page, int):
        return EFAULT
    r = RET_PF_RETRY
    await read_lock(kvm.mmu_lock)                 # kvm_fault_lock (no pKVM)
    pgt = stage2_pgt(kvm)                         # pgt = vcpu->arch.hw_mmu->pgt
    if not mmu_invalidate_retry(kvm, mmu_seq):
        await kvm_pgtable_stage2_map(vcpu, pgt, gfn, page)
        r = RET_PF_FIXED
    await read_unlock(kvm.mmu_lock)
    await memory.put_page(page)                   # kvm_release_faultin_page
    return r


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_handle_guest_abort(vcpu, gfn: int, write: bool) -> int:
    idx = await srcu_read_lock(vcpu.kvm.srcu)
    r = await user_mem_abort(vcpu, gfn, write)
    await srcu_read_unlock(vcpu.kvm.srcu, idx)
    return r


@kfunc("arch/arm64/kvm/arm.c")
async def kvm_arch_vcpu_ioctl_run(vcpu) -> None:
    await vcpu_run(vcpu, kvm_handle_guest_abort)
