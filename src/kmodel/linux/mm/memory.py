"""mm/memory.c, mm/mmu_gather.c, mm/page_alloc.c: mapping, unmapping and freeing pages,
and the faults that GUP takes.

Simplified: one page-table lock per VMA (pte_offset_map_lock); page-table pages and the
TLB itself are not modelled.  Freed pages are
poisoned: if a secondary MMU still maps a page when it is freed, or installs a mapping of
a freed page, that is reported as a use-after-free, where it happens.
"""

from __future__ import annotations

from ...engine import WRITE, Op
from ..include.bitops import test_bit
from ..kernel.core import call_trace, culprit, kernel, kfunc
from ..kernel.locking.spinlock import spin_lock, spin_unlock
from ..kernel.sched import current
from ..lib.dump_stack import dump_stack, report_splat
from . import mmu_notifier as mn
from .mm_types import MMF_UNSTABLE, page

class mmu_gather:
    def __init__(self, mm):
        self.mm = mm
        self.pages: list[page] = []


def alloc_page() -> page:
    """mm/page_alloc.c: a fresh page, refcount 1 (the caller's reference)."""
    k = kernel()
    pfn = k.next_pfn
    k.next_pfn = pfn + 1
    p = page(pfn)
    p.refcount = 1
    return p


async def get_page(p: page) -> None:
    await Op(p, WRITE, f"get_page(pfn {p.pfn:#x})")
    p.refcount += 1


async def put_page(p: page) -> None:
    """The last reference frees the page."""
    await Op(p, WRITE, f"put_page(pfn {p.pfn:#x})")
    p.refcount -= 1
    if p.refcount == 0:
        free_page(p)


def free_page(p: page) -> None:
    """mm/page_alloc.c: __free_pages; with KASAN the page is poisoned.  The check that no
    secondary MMU still maps it is the model's oracle for "a secondary MMU maps a freed
    page" (KVM's release/invalidate contract)."""
    p.freed = True
    ts = current()
    p.freed_by = ts.comm
    if p.spte_users:
        kvm, gfn = p.spte_users[0]
        report_uaf(p, f"pfn {p.pfn:#x} freed while {kvm.cname}'s secondary MMU still maps "
                      f"it at gfn {gfn:#x}", "free")


def report_uaf(p: page, what: str, access: str) -> None:
    """Once per page and execution: the first place the stale mapping shows."""
    if getattr(p, "uaf_reported", False):
        return
    p.uaf_reported = True
    k = kernel()
    ts = current()
    trace = call_trace()
    fn = culprit(trace, ts.comm)
    bar = "=" * 66
    head = "BUG: KASAN: use-after-free" if k.config.KASAN else "kmodel: use-after-free"
    lines = [bar, f"{head} in {fn}", f"{access} of pfn {p.pfn:#x} by task {ts.comm}/{ts.pid}",
             f"kmodel: {what}", ""] + dump_stack(ts, trace) + [
        "", f"The buggy address belongs to the physical page pfn {p.pfn:#x}, freed by "
            f"{p.freed_by}", bar]
    report_splat("use-after-free", f"use-after-free: secondary MMU maps a freed page "
                                   f"({access})", lines, ts, trace, fn)


async def pte_offset_map_lock(vma) -> None:
    await spin_lock(vma.ptl)


async def pte_unmap_unlock(vma) -> None:
    await spin_unlock(vma.ptl)


def tlb_gather_mmu(mm) -> mmu_gather:
    return mmu_gather(mm)


@kfunc("mm/mmu_gather.c")
async def tlb_finish_mmu(tlb: mmu_gather) -> None:
    """mm/mmu_gather.c: tlb_finish_mmu: flush the CPU TLB, then free the gathered pages."""
    pages, tlb.pages = tlb.pages, []
    for p in pages:
        await put_page(p)


@kfunc("mm/memory.c")
async def unmap_page_range(tlb: mmu_gather, vma, start: int, end: int) -> int:
    """mm/memory.c: unmap_page_range: clear the PTEs under the page-table lock and gather
    the pages for freeing after the TLB flush.  Returns how many pages it unmapped."""
    await pte_offset_map_lock(vma)
    await Op((vma, "ptes"), WRITE, f"unmap_page_range({vma.name} [{start}, {end}))")
    n = 0
    for addr in sorted(a for a in vma.ptes if start <= a < end):
        tlb.pages.append(vma.ptes.pop(addr))
        n += 1
    if MMF_UNSTABLE in vma.vm_mm.flags:
        # for the reaped-stays-reaped property: unmapped from an mm the OOM reaper has
        # declared unstable, so no fault may map anything here again
        vma.unmapped_unstable.append((start, end))
    await pte_unmap_unlock(vma)
    return n


@kfunc("mm/memory.c")
async def handle_mm_fault(vma, addr: int, write: bool) -> bool:
    return await __handle_mm_fault(vma, addr, write)


@kfunc("mm/memory.c")
async def __handle_mm_fault(vma, addr: int, write: bool) -> bool:
    """mm/memory.c: the anonymous fault (do_anonymous_page, inlined here) and the
    write-protect (CoW) fault.  Under the PTE lock, a present PTE ends the fault; otherwise
    an mm the OOM reaper has started on fails it (check_stable_address_space, tested after
    pte_none as the kernel does: VM_FAULT_SIGBUS) before the new PTE is set.  A write to a
    present read-only PTE is handle_pte_fault's do_wp_page, entered with the PTE lock held
    and the PTE as it was (orig_pte); a write to one zapped meanwhile is an anonymous
    fault."""
    if write and addr in vma.cow:
        await pte_offset_map_lock(vma)
        orig = vma.ptes.get(addr)               # vmf->orig_pte, pte_same under the lock
        if orig is not None:
            return await do_wp_page(vma, addr, orig)
        await pte_unmap_unlock(vma)
    await pte_offset_map_lock(vma)
    await Op((vma, "ptes"), WRITE, f"do_anonymous_page({vma.name} @{addr})")
    ok = True
    if addr not in vma.ptes:
        if await test_bit(MMF_UNSTABLE, vma.vm_mm):
            ok = False
        else:
            vma.ptes[addr] = alloc_page()
    await pte_unmap_unlock(vma)
    return ok


@kfunc("mm/memory.c")
async def do_wp_page(vma, addr: int, orig: page) -> bool:
    """mm/memory.c: do_wp_page, called with the PTE lock held: pin the old page
    (folio_get), drop the lock and copy (wp_page_copy)."""
    await get_page(orig)
    await pte_unmap_unlock(vma)
    return await wp_page_copy(vma, addr, orig)


@kfunc("mm/memory.c")
async def wp_page_copy(vma, addr: int, old: page) -> bool:
    """mm/memory.c: wp_page_copy: allocate and copy, start the mmu_notifier range
    [addr, addr+1), retake the PTE lock and install the copy only if the PTE is still the
    one the fault saw (pte_same) -- a concurrent zap or fault may have changed it, and
    then the copy is freed and the fault returns to be retried.  After the end of the
    range, the old page loses the mapping's reference (if replaced) and the fault's."""
    new = alloc_page()
    rng = mn.mmu_notifier_range(vma.vm_mm, addr, addr + 1, blockable=True, event="CLEAR")
    await mn.mmu_notifier_invalidate_range_start(rng)
    await pte_offset_map_lock(vma)
    await Op((vma, "ptes"), WRITE, f"wp_page_copy({vma.name} @{addr})")
    replaced = vma.ptes.get(addr) is old                  # pte_same(*pte, orig_pte)
    if replaced:
        vma.ptes[addr] = new
        vma.cow.discard(addr)
    await pte_unmap_unlock(vma)
    await mn.mmu_notifier_invalidate_range_end(rng)
    if replaced:
        await put_page(old)          # the mapping's reference (new_folio = old_folio)
    else:
        await put_page(new)          # the unused copy
    await put_page(old)              # do_wp_page's folio_get
    return True


@kfunc("mm/memory.c")
async def zap_page_range_single(vma, start: int, end: int) -> None:
    """mm/memory.c: zap_page_range_single (madvise(MADV_DONTNEED)): a blockable
    invalidation around the unmap, then free."""
    rng = mn.mmu_notifier_range(vma.vm_mm, start, end, blockable=True, event="CLEAR")
    tlb = tlb_gather_mmu(vma.vm_mm)
    await mn.mmu_notifier_invalidate_range_start(rng)
    await unmap_page_range(tlb, vma, start, end)
    await mn.mmu_notifier_invalidate_range_end(rng)
    await tlb_finish_mmu(tlb)
