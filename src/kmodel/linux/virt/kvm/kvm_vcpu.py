"""A vCPU and what the guest does with it: touch guest-physical pages, fault them in.

Simplified: the guest's work is a list of (gfn, write) accesses; a fault that keeps
being stale is retried a bounded number of times (VCPU_FAULT_RETRIES), after which the
vCPU is recorded as stuck on that gfn -- the end-of-run check then tells a retry that
could never succeed (mmu_invalidate_in_progress left raised) from one that just lost a
race.  A vCPU leaves KVM_RUN when a fatal signal is pending, as vcpu_run does.
"""

from __future__ import annotations

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
        self.accesses = list(accesses)
        self.stuck_gfn = None
        self.faults = 0
        self.retries = 0
        self.exit_reason = None


class kvm_page_fault:
    def __init__(self, gfn: int, write: bool):
        self.gfn = gfn
        self.write = write
        self.mmu_seq = 0
        self.slot = None
        self.page = None
