"""include/linux/kvm_host.h: struct kvm, memslots, and the invalidation bookkeeping.

``kvm_create_vm`` builds the struct as virt/kvm/kvm_main.c does and is patchable (a design
that changes a lock's type changes it here).  Simplified: one address space; memslots are
a list (the hva interval tree answers the same questions); the generation counter is not
modelled (nothing here caches memslot lookups across a swap).
"""

from __future__ import annotations

from ...kernel.core import kernel, patchable
from ...kernel.locking.mutex import mutex
from ...kernel.locking.spinlock import rwlock_t, spinlock_t
from ...kernel.rcu.srcu import srcu_struct
from ...kernel.rcuwait import rcuwait

INVALID_GPA = -1
KVM_MEMSLOT_INVALID = "KVM_MEMSLOT_INVALID"


class kvm_memory_slot:
    def __init__(self, id: int, base_gfn: int, npages: int, userspace_addr: int,
                 flags=()):
        self.id = id
        self.base_gfn = base_gfn
        self.npages = npages
        self.userspace_addr = userspace_addr
        self.flags = set(flags)

    def hva_range(self) -> tuple[int, int]:
        return self.userspace_addr, self.userspace_addr + self.npages

    def gfn_to_hva(self, gfn: int) -> int:
        return self.userspace_addr + (gfn - self.base_gfn)

    def hva_to_gfn(self, hva: int) -> int:
        return self.base_gfn + (hva - self.userspace_addr)

    def copy(self, **changes) -> "kvm_memory_slot":
        s = kvm_memory_slot(self.id, self.base_gfn, self.npages, self.userspace_addr,
                            self.flags)
        for k, v in changes.items():
            setattr(s, k, v)
        return s

    def __repr__(self):
        return f"<memslot {self.id} gfn {self.base_gfn}+{self.npages} hva {self.userspace_addr}>"


class kvm_memslots:
    def __init__(self, slots: list[kvm_memory_slot]):
        self.slots = list(slots)

    def overlapping(self, start: int, end: int) -> list[kvm_memory_slot]:
        """kvm_for_each_memslot_in_hva_range over [start, end)."""
        out = []
        for s in self.slots:
            lo, hi = s.hva_range()
            if lo < end and start < hi:
                out.append(s)
        return out

    def find_gfn(self, gfn: int):
        for s in self.slots:
            if s.base_gfn <= gfn < s.base_gfn + s.npages:
                return s
        return None


class gfn_to_pfn_cache:
    """include/linux/kvm_types.h: struct gfn_to_pfn_cache, a cached guest-physical to host
    mapping (kvmclock's pv_time, Xen's shared info).  ``lock`` (rwlock_t) guards valid/pfn
    for readers; ``refresh_lock`` (mutex) serialises refreshes.  ``pfn`` is the page the
    cache maps (kernel mapping khva included) -- the cache holds no reference on it: the
    mmu_notifier invalidation is what keeps it from being used after the page goes."""

    def __init__(self, name: str, uhva: int, kvm=None, gpa: int = 0):
        self.cname = name
        self.lock = rwlock_t("&gpc->lock")
        self.refresh_lock = mutex("&gpc->refresh_lock")
        self.kvm = kvm
        self.gpa = gpa
        self.uhva = uhva
        self.active = True
        self.valid = True
        self.pfn = None              # the page (None: KVM_PFN_ERR_FAULT)


class kvm_arch:
    def __init__(self):
        self.sptes: dict = {}         # gfn -> page: the secondary MMU (TDP / stage-2)


class kvm:
    cname = "kvm"

    def __init__(self):
        self.mm = None
        self.users_count = 1
        self.vm_bugged = False
        self.arch = kvm_arch()


@patchable("virt/kvm/kvm_main.c")
def kvm_create_vm(mm, slots: list[kvm_memory_slot], gpc_uhvas=()) -> kvm:
    """virt/kvm/kvm_main.c: kvm_create_vm: the locks and counters of the notifier
    protocol.  mmu_lock is an rwlock_t on x86 and arm64 (KVM_HAVE_MMU_RWLOCK)."""
    k = kvm()
    k.mm = mm
    mm.mm_count += 1                             # mmgrab(current->mm)
    k.mmu_lock = rwlock_t("&kvm->mmu_lock")
    k.mn_invalidate_lock = spinlock_t("&kvm->mn_invalidate_lock")
    k.mn_active_invalidate_count = 0
    k.mn_memslots_update_rcuwait = rcuwait("&kvm->mn_memslots_update_rcuwait")
    k.mmu_invalidate_seq = 0
    k.mmu_invalidate_in_progress = 0
    k.mmu_invalidate_range_start = INVALID_GPA
    k.mmu_invalidate_range_end = INVALID_GPA
    k.srcu = srcu_struct("&kvm->srcu")
    k.slots_lock = mutex("&kvm->slots_lock")
    k.slots_arch_lock = mutex("&kvm->slots_arch_lock")
    k.memslots = kvm_memslots(slots)
    k.gpc_lock = spinlock_t("&kvm->gpc_lock")
    k.gpc_list = [gfn_to_pfn_cache("kvmclock", u, k) for u in gpc_uhvas] \
        if kernel().arch == "x86" else []
    for gpc in k.gpc_list:
        # kvm_gpc_activate() by the guest's MSR_KVM_SYSTEM_TIME_NEW write, before the run
        # starts: valid over the page mapped at uhva (or not valid if none is mapped yet)
        vma = mm.find_vma(gpc.uhva)
        gpc.pfn = vma.ptes.get(gpc.uhva) if vma is not None else None
        gpc.valid = gpc.pfn is not None
    return k
