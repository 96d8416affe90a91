"""arch/x86/kvm/mmu/mmu.c, tdp_mmu.c and x86.c: the TDP MMU, its page fault and the vCPU
run loop as far as the protocol needs them.

The fault snapshots mmu_invalidate_seq before GUP, then under the *read* side of mmu_lock
checks mmu_invalidate_retry_gfn (is_page_fault_stale) and installs the SPTE under the
same hold.  Zaps run under the write side, taken by kvm_handle_hva_range.
"""

from __future__ import annotations

from .....engine import READ, Op
from ....include.rwonce import READ_ONCE
from ....kernel.core import kfunc
from ....kernel.locking.spinlock import read_lock, read_unlock, write_lock, write_unlock
from ....kernel.panic import WARN_ON_ONCE
from ....kernel.rcu.srcu import srcu_read_lock, srcu_read_unlock
from ....mm import memory
from ....virt.kvm import kvm_main, spte
from ....virt.kvm.kvm_vcpu import vcpu_run
from ....virt.kvm.kvm_host import INVALID_GPA, KVM_MEMSLOT_INVALID
from ....virt.kvm.kvm_vcpu import EFAULT, RET_PF_CONTINUE, RET_PF_FIXED, RET_PF_RETRY, \
    kvm_page_fault


@kfunc("arch/x86/kvm/mmu/tdp_mmu.c")
async def kvm_unmap_gfn_range(kvm, rng) -> bool:
    """kvm_unmap_gfn_range -> kvm_tdp_mmu_unmap_gfn_range: zap the leaf SPTEs."""
    return await spte.zap(kvm, rng.start, rng.end, f"tdp_mmu_zap_leafs(gfn [{rng.start:#x}, {rng.end:#x}))")


@kfunc("arch/x86/kvm/x86.c")
async def kvm_flush_remote_tlbs(kvm) -> None:
    """IPIs that wait for every vCPU to acknowledge; they spin, they do not sleep."""


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_arch_flush_shadow_all(kvm) -> None:
    await kvm_mmu_zap_all(kvm)


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_mmu_zap_all(kvm) -> None:
    """mmu.c: kvm_mmu_zap_all: write_lock(&kvm->mmu_lock) around zapping everything."""
    await write_lock(kvm.mmu_lock)
    await spte.zap(kvm, 0, 1 << 60, "kvm_tdp_mmu_zap_all()")
    await write_unlock(kvm.mmu_lock)


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_arch_flush_shadow_memslot(kvm, slot) -> None:
    """mmu.c: kvm_mmu_zap_memslot under write mmu_lock."""
    await write_lock(kvm.mmu_lock)
    await spte.zap(kvm, slot.base_gfn, slot.base_gfn + slot.npages, f"kvm_mmu_zap_memslot(slot {slot.id})")
    await write_unlock(kvm.mmu_lock)


# -- the fault path ---------------------------------------------------------------------

def mmu_invalidate_retry_gfn(kvm, mmu_seq: int, gfn: int) -> bool:
    """include/linux/kvm_host.h: mmu_invalidate_retry_gfn (mmu_lock held)."""
    if kvm.mmu_invalidate_in_progress:
        if WARN_ON_ONCE(kvm.mmu_invalidate_range_start == INVALID_GPA,
                        "kvm->mmu_invalidate_range_start == INVALID_GPA"):
            return True
        if kvm.mmu_invalidate_range_start <= gfn < kvm.mmu_invalidate_range_end:
            return True
    return kvm.mmu_invalidate_seq != mmu_seq


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_mmu_faultin_pfn(vcpu, fault: kvm_page_fault) -> int:
    """mmu.c: kvm_mmu_faultin_pfn: snapshot mmu_invalidate_seq (then smp_rmb), look up the
    memslot, resolve the pfn through GUP (which may sleep and may invalidate)."""
    kvm = vcpu.kvm
    fault.mmu_seq = await READ_ONCE(kvm, "mmu_invalidate_seq",
                                    "fault->mmu_seq = kvm->mmu_invalidate_seq")
    await Op((kvm, "memslots"), READ, "kvm_vcpu_gfn_to_memslot()")
    fault.slot = kvm.memslots.find_gfn(fault.gfn)
    if fault.slot is None or KVM_MEMSLOT_INVALID in fault.slot.flags:
        return RET_PF_RETRY
    fault.page = await kvm_main.__kvm_faultin_pfn(fault.slot, kvm.mm, fault.gfn, fault.write)
    if fault.page is None or isinstance(fault.page, int):
        return EFAULT                 # KVM_PFN_ERR_FAULT / KVM_PFN_ERR_SIGPENDING
    return RET_PF_CONTINUE


@kfunc("arch/x86/kvm/mmu/tdp_mmu.c")
async def kvm_tdp_mmu_map(vcpu, fault: kvm_page_fault) -> int:
    await spte.install(vcpu.kvm, fault.gfn, fault.page,
                       f"tdp_mmu_map_handle_target_level(gfn {fault.gfn:#x})")
    return RET_PF_FIXED


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_tdp_page_fault(vcpu, fault: kvm_page_fault) -> int:
    """mmu.c: kvm_tdp_mmu_page_fault: faultin, then read_lock(mmu_lock), then the stale
    check and the map under the same hold."""
    kvm = vcpu.kvm
    r = await kvm_mmu_faultin_pfn(vcpu, fault)
    if r != RET_PF_CONTINUE:
        return r
    r = RET_PF_RETRY
    await read_lock(kvm.mmu_lock)
    if not (fault.slot and mmu_invalidate_retry_gfn(kvm, fault.mmu_seq, fault.gfn)):
        r = await kvm_tdp_mmu_map(vcpu, fault)
    await read_unlock(kvm.mmu_lock)
    await memory.put_page(fault.page)         # kvm_release_faultin_page
    return r


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_mmu_do_page_fault(vcpu, gfn: int, write: bool) -> int:
    return await kvm_tdp_page_fault(vcpu, kvm_page_fault(gfn, write))


@kfunc("arch/x86/kvm/mmu/mmu.c")
async def kvm_mmu_page_fault(vcpu, gfn: int, write: bool) -> int:
    idx = await srcu_read_lock(vcpu.kvm.srcu)
    r = await kvm_mmu_do_page_fault(vcpu, gfn, write)
    await srcu_read_unlock(vcpu.kvm.srcu, idx)
    return r


@kfunc("arch/x86/kvm/vmx/vmx.c")
async def vmx_handle_exit(vcpu, gfn: int, write: bool) -> int:
    return await kvm_mmu_page_fault(vcpu, gfn, write)


@kfunc("arch/x86/kvm/x86.c")
async def kvm_arch_vcpu_ioctl_run(vcpu) -> None:
    """x86.c: vcpu_run -> vcpu_enter_guest: pending requests (the clock update), then the
    guest; its EPT violations exit to vmx_handle_exit."""
    from .x86 import kvm_guest_time_update
    await vcpu_run(vcpu, vmx_handle_exit, kvm_guest_time_update)
