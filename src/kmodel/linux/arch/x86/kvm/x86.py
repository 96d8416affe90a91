"""arch/x86/kvm/x86.c: kvmclock, the pfn cache a vCPU uses on every clock update.

The guest registers its pvclock page with MSR_KVM_SYSTEM_TIME_NEW (kvm_write_system_time
-> kvm_gpc_activate(&vcpu->arch.pv_time, ...)); from then on each KVM_REQ_CLOCK_UPDATE,
handled in vcpu_enter_guest before the guest runs, rewrites the page through the cache:
kvm_guest_time_update -> kvm_setup_guest_pvclock, which takes gpc->lock for read, checks
the cache, and on a failed check drops the lock, refreshes and tries again.

Read against arch/x86/kvm/x86.c as quoted in Sean Christopherson's 2025 pvclock series
(kvm_setup_guest_pvclock, unchanged in its locking by it).

Simplified: the cache is the VM's first gpc (one vCPU per scenario: the kernel's is per
vCPU, vcpu->arch.pv_time); one clock update at the first guest entry (the request
kvm_arch_vcpu_load makes); the pvclock contents (version, flags, tsc scaling) are one
write of the page.
"""

from __future__ import annotations

from ....kernel.core import kfunc
from ....kernel.locking.spinlock import read_lock_irq, read_unlock_irq
from ....virt.kvm import pfncache

PVCLOCK_SIZE = 32           # sizeof(struct pvclock_vcpu_time_info)


@kfunc("arch/x86/kvm/x86.c")
async def kvm_setup_guest_pvclock(vcpu, gpc, offset: int) -> None:
    """x86.c: read_lock_irqsave(&gpc->lock); while (!kvm_gpc_check()) { unlock;
    if (kvm_gpc_refresh()) return; relock; } then write the guest's pvclock through
    gpc->khva and unlock."""
    await read_lock_irq(gpc.lock)                     # read_lock_irqsave
    while not await pfncache.kvm_gpc_check(gpc, offset + PVCLOCK_SIZE):
        await read_unlock_irq(gpc.lock)
        if await pfncache.kvm_gpc_refresh(gpc, offset + PVCLOCK_SIZE):
            vcpu.pvclock_refresh_failed = True
            return
        await read_lock_irq(gpc.lock)
    await pfncache.gpc_access(gpc, "guest_hv_clock->version = ...; memcpy(guest_hv_clock)")
    vcpu.pvclock_updates += 1
    await read_unlock_irq(gpc.lock)


@kfunc("arch/x86/kvm/x86.c")
async def kvm_guest_time_update(vcpu) -> None:
    """x86.c: kvm_guest_time_update: with kvmclock enabled (pv_time active), publish the
    clock to the guest through the cache."""
    gpc = vcpu.pv_time
    if gpc is not None and gpc.active:
        await kvm_setup_guest_pvclock(vcpu, gpc, 0)
