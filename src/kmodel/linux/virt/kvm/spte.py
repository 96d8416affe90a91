"""The secondary MMU's entries (x86 SPTEs, arm64 stage-2 PTEs): gfn -> page.

Installing an entry for a freed page, a guest access through an entry to a freed page,
and freeing a page an entry still maps (mm/memory.py) are the use-after-free oracle.
"""

from __future__ import annotations

from ....engine import READ, WRITE, Op
from ...mm.memory import report_uaf


async def install(kvm, gfn: int, page, label: str) -> None:
    await Op((kvm, "sptes"), WRITE, label)
    await Op(page, READ, f"map pfn {page.pfn:#x}")
    if page.freed:
        report_uaf(page, f"secondary MMU installs gfn {gfn:#x} -> freed pfn {page.pfn:#x}",
                   "map")
    old = kvm.arch.sptes.get(gfn)
    if old is not None and (kvm, gfn) in old.spte_users:
        old.spte_users.remove((kvm, gfn))
    kvm.arch.sptes[gfn] = page
    page.spte_users.append((kvm, gfn))


async def zap(kvm, start: int, end: int, label: str) -> bool:
    """Drop the entries for gfns in [start, end), one visible step per entry (so a
    section that zaps more guest memory is longer); the caller holds mmu_lock for
    write.  Returns whether anything was zapped (a TLB flush is due)."""
    gfns = sorted(g for g in kvm.arch.sptes if start <= g < end)
    if not gfns:
        await Op((kvm, "sptes"), WRITE, f"{label}: nothing mapped")
        return False
    for gfn in gfns:
        await Op((kvm, "sptes"), WRITE, f"{label}: zap gfn {gfn:#x}")
        page = kvm.arch.sptes.pop(gfn, None)
        if page is not None and (kvm, gfn) in page.spte_users:
            page.spte_users.remove((kvm, gfn))
    return True


async def guest_access(kvm, gfn: int, vcpu_name: str) -> bool:
    """The guest touches gfn through its secondary MMU; False if there is no entry."""
    await Op((kvm, "sptes"), READ, f"guest access gfn {gfn:#x} ({vcpu_name})")
    page = kvm.arch.sptes.get(gfn)
    if page is None:
        return False
    if page.freed:
        report_uaf(page, f"guest access to gfn {gfn:#x} reaches freed pfn {page.pfn:#x}",
                   "guest access")
    return True
