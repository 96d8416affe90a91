"""mm/gup.c: get_user_pages, the slow path that faults pages in, and GUP-fast, the
lockless walk that only takes a page already mapped.

The slow path stops when the caller has a fatal signal pending (-EINTR: "don't keep
faulting pages and potentially allocating memory"); GUP-fast does not look at signals.
"""

from __future__ import annotations

from ...engine import READ, WRITE, Op
from ..kernel.core import kfunc
from ..kernel.locking.rwsem import down_read_killable, up_read
from ..kernel.sched import current, fatal_signal_pending, sigpending
from .memory import get_page, handle_mm_fault, pte_offset_map_lock, pte_unmap_unlock, \
    put_page

EINTR = -4
EAGAIN = -11


@kfunc("mm/gup.c")
async def get_user_page_fast_only(mm, addr: int, write: bool):
    """mm/gup.c: the lockless walk (IRQs off): a present PTE -- writable if asked -- gets
    its page with a reference; anything else fails and the caller takes the slow path."""
    vma = mm.find_vma(addr)
    if vma is None:
        return None
    await Op((vma, "ptes"), READ, f"gup_fast_pte_range({vma.name} @{addr})")
    p = vma.ptes.get(addr)
    if p is None or (write and addr in vma.cow):
        return None
    if not await try_grab_folio_fast(p):
        return None
    await Op((vma, "ptes"), READ, f"gup_fast: recheck pte ({vma.name} @{addr})")
    if vma.ptes.get(addr) is not p:        # the PTE changed under us: back off
        await put_page(p)
        return None
    return p


async def try_grab_folio_fast(p) -> bool:
    """mm/gup.c: take a reference only if the page is not already on its way to being
    freed (folio_ref_try_add)."""
    await Op(p, WRITE, f"try_grab_folio_fast(pfn {p.pfn:#x})")
    if p.refcount == 0:
        return False
    p.refcount += 1
    return True


@kfunc("mm/gup.c")
async def get_user_pages_unlocked(mm, addr: int, write: bool):
    """mm/gup.c: get_user_pages_unlocked -> __get_user_pages_locked: take mmap_lock for
    read with mmap_read_lock_killable (-EAGAIN if a fatal signal ends the wait), fault
    the page in if needed, and return it with a reference held (or None)."""
    if await down_read_killable(mm.mmap_lock):
        return EAGAIN
    p = await __get_user_pages(mm, addr, write)
    await up_read(mm.mmap_lock)
    return p


@kfunc("mm/gup.c")
async def __get_user_pages(mm, addr: int, write: bool):
    vma = mm.find_vma(addr)
    if vma is None:
        return None
    ts = current()
    await Op(sigpending(ts), READ, "fatal_signal_pending(current)")
    if fatal_signal_pending(ts):
        return EINTR                 # "don't keep faulting pages"
    await pte_offset_map_lock(vma)
    await Op((vma, "ptes"), READ, f"follow_page_pte({vma.name} @{addr})")
    p = vma.ptes.get(addr)
    if p is not None and not (write and addr in vma.cow):
        await get_page(p)
        await pte_unmap_unlock(vma)
        return p
    await pte_unmap_unlock(vma)
    if not await handle_mm_fault(vma, addr, write):
        return None
    await pte_offset_map_lock(vma)
    await Op((vma, "ptes"), READ, f"follow_page_pte({vma.name} @{addr})")
    p = vma.ptes.get(addr)
    if p is not None:
        await get_page(p)
    await pte_unmap_unlock(vma)
    return p


