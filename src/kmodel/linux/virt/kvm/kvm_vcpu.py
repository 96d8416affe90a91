"""A vCPU and what the guest does with it: touch guest-physical pages, fault them in.

Simplified: the guest's work is a list of (gfn, write) accesses; a fault that keeps
being stale is retried a bounded number of times (VCPU_FAULT_RETRIES), after which the
vCPU is recorded as stuck on that gfn -- the end-of-run check then tells a retry that
could never succeed (mmu_invalidate_in_progress left raised) from one that just lost a
race.  A vCPU leaves KVM_RUN when a fatal signal is pending, as vcpu_run does.
"""

from __future__ import annotations

from ....engine import READ, Op
from ...kernel.locking.mutex import mutex
from ..kvm import spte

VCPU_FAULT_RETRIES = 2
RET_PF_CONTINUE = 0
RET_PF_RETRY = 1
RET_PF_FIXED = 2
RET_PF_EMULATE = 3
EFAULT = -14


class kvm_vcpu:
    def __init__(self, kvm, vcpu_id: int, accesses):
        self.kvm = kvm
        self.vcpu_id = vcpu_id
        self.mutex = mutex("&vcpu->mutex")    # kvm_vcpu_init: mutex_init(&vcpu->mutex)
        self.accesses = list(accesses)
        self.stuck_gfn = None
        self.faults = 0
        self.retries = 0
        self.exit_reason = None
        # x86: vcpu->arch.pv_time, the kvmclock gfn_to_pfn_cache (the VM's first), used
        # when the scenario's guest enables kvmclock (knob kvmclock)
        gpcs = getattr(kvm, "gpc_list", [])
        self.pv_time = gpcs[0] if gpcs and getattr(kvm, "kvmclock", False) else None
        self.pvclock_updates = 0
        self.pvclock_refresh_failed = False


class kvm_page_fault:
    def __init__(self, gfn: int, write: bool):
        self.gfn = gfn
        self.write = write
        self.mmu_seq = 0
        self.slot = None
        self.page = None


async def vcpu_run(vcpu, handle_exit, first_entry_requests=None) -> None:
    """x86.c / arm.c: vcpu_run: enter the guest until a fatal signal is pending; each
    access without a secondary-MMU entry exits to the fault handler.  Before the first
    entry the requests pending since vcpu_load are handled (x86: KVM_REQ_CLOCK_UPDATE,
    which writes kvmclock through its pfn cache)."""
    from ...kernel.sched import current, sigpending
    kvm = vcpu.kvm
    ts = current()
    if first_entry_requests is not None and vcpu.pv_time is not None:
        await Op(sigpending(ts), READ, "fatal_signal_pending(current)")
        if ts.sigkill_pending:
            vcpu.exit_reason = "fatal signal"
            return
        await first_entry_requests(vcpu)
    for gfn, write in vcpu.accesses:
        tries = 0
        while True:
            await Op(sigpending(ts), READ, "fatal_signal_pending(current)")
            if ts.sigkill_pending:
                vcpu.exit_reason = "fatal signal"
                return
            if await spte.guest_access(kvm, gfn, ts.comm):
                break
            vcpu.faults += 1
            r = await handle_exit(vcpu, gfn, write)
            if r == RET_PF_FIXED:
                continue
            if r == EFAULT:
                vcpu.exit_reason = "EFAULT"
                return
            tries += 1
            vcpu.retries += 1
            if tries > VCPU_FAULT_RETRIES:
                vcpu.stuck_gfn = gfn
                return
