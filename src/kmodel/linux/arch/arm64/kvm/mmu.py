"""arch/arm64/kvm/mmu.c, nested.c and arm.c: stage-2 faults and unmapping.

user_mem_abort snapshots mmu_invalidate_seq under mmap_read_lock, faults the page in,
takes mmu_lock for *read* (kvm_fault_lock, without pKVM) and checks the range-less
mmu_invalidate_retry: while any invalidation is in progress, every fault retries.
kvm_unmap_gfn_range does its own TLB maintenance and returns false.
"""

from __future__ import annotations

from .....engine import READ, Op
from ....kernel.core import kfunc
from ....kernel.locking.rwsem import down_read, up_read
from ....kernel.locking.spinlock import read_lock, read_unlock, write_lock, write_unlock
from ....kernel.rcu.srcu import srcu_read_lock, srcu_read_unlock
from ....mm import memory
from ....virt.kvm import kvm_main, spte
from ....virt.kvm.kvm_vcpu import vcpu_run
from ....virt.kvm.kvm_host import KVM_MEMSLOT_INVALID
from ....virt.kvm.kvm_vcpu import EFAULT, RET_PF_FIXED, RET_PF_RETRY


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_unmap_gfn_range(kvm, rng) -> bool:
    await spte.zap(kvm, rng.start, rng.end, f"__unmap_stage2_range(gfn [{rng.start:#x}, {rng.end:#x}))")
    return False


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_flush_remote_tlbs(kvm) -> None:
    pass


@kfunc("arch/arm64/kvm/nested.c")
async def kvm_arch_flush_shadow_all(kvm) -> None:
    await kvm_uninit_stage2_mmu(kvm)


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_uninit_stage2_mmu(kvm) -> None:
    await kvm_free_stage2_pgd(kvm)


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_free_stage2_pgd(kvm) -> None:
    """mmu.c: detach the stage-2 page table under write mmu_lock."""
    await write_lock(kvm.mmu_lock)
    await spte.zap(kvm, 0, 1 << 60, "kvm_free_stage2_pgd()")
    await write_unlock(kvm.mmu_lock)


@kfunc("arch/arm64/kvm/mmu.c")
async def kvm_arch_flush_shadow_memslot(kvm, slot) -> None:
    await write_lock(kvm.mmu_lock)
    await spte.zap(kvm, slot.base_gfn, slot.base_gfn + slot.npages, f"kvm_stage2_unmap_range(slot {slot.id})")
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
    if not mmu_invalidate_retry(kvm, mmu_seq):
        await spte.install(kvm, gfn, page, f"kvm_pgtable_stage2_map(gfn {gfn:#x})")
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
