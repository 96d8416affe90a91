"""include/linux/mm_types.h: mm_struct, vm_area_struct, struct page.

Addresses are page numbers (one "hva" per page): no property of the protocol depends on
byte granularity.  A page knows which secondary-MMU entries map it, so that freeing a page
that a guest can still reach is caught where it happens.
"""

from __future__ import annotations

from ..kernel.locking.rwsem import rw_semaphore
from ..kernel.locking.spinlock import spinlock_t

MMF_UNSTABLE = "MMF_UNSTABLE"
MMF_OOM_SKIP = "MMF_OOM_SKIP"
MMF_OOM_REAP_QUEUED = "MMF_OOM_REAP_QUEUED"

VM_SHARED = "VM_SHARED"
VM_HUGETLB = "VM_HUGETLB"
VM_PFNMAP = "VM_PFNMAP"


class page:
    def __init__(self, pfn: int):
        self.pfn = pfn
        self.cname = f"page(pfn {pfn})"
        self.refcount = 0
        self.freed = False
        self.freed_by: str | None = None
        self.spte_users: list = []      # (kvm, gfn) of secondary-MMU entries mapping it

    def __repr__(self):
        return f"<page pfn={self.pfn}{' freed' if self.freed else ''}>"


class vm_area_struct:
    def __init__(self, mm, start: int, end: int, flags=(), name: str = "anon"):
        self.vm_mm = mm
        self.vm_start = start
        self.vm_end = end
        self.vm_flags = set(flags)
        self.name = name
        self.ptes: dict[int, page] = {}     # address -> page (present PTEs)
        self.ptl = spinlock_t(f"ptlock({name}@{start:#x})")   # the page-table lock
        self.cow: set[int] = set()          # addresses mapped read-only, to be CoW-broken
        self.detached = False
        self.unmapped_unstable: list[tuple[int, int]] = []   # ranges unmapped once the
        #                                       mm was MMF_UNSTABLE (see unmap_page_range)

    def is_anonymous(self) -> bool:
        return self.name == "anon"

    def __repr__(self):
        return f"<vma {self.name} [{self.vm_start}, {self.vm_end})>"


class mm_struct:
    def __init__(self, name: str):
        self.cname = name
        self.mm_users = 1
        self.mm_count = 1
        self.mmap_lock = rw_semaphore(f"&{name}->mmap_lock")
        self.flags: set[str] = set()
        self.vmas: list[vm_area_struct] = []
        self.notifier_subscriptions = None
        self.freed = False

    def find_vma(self, addr: int):
        for vma in self.vmas:
            if vma.vm_start <= addr < vma.vm_end:
                return vma
        return None

    def __repr__(self):
        return f"<mm {self.cname}>"
