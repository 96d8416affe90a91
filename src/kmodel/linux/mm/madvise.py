"""mm/madvise.c and mm/vma.c: madvise(MADV_DONTNEED) and munmap, the blockable
invalidations a victim's own threads can be running when the OOM reaper comes."""

from __future__ import annotations

from ...engine import WRITE, Op
from ..kernel.core import kfunc
from ..kernel.locking.lock_wait import EINTR
from ..kernel.locking.rwsem import down_read, down_write_killable, downgrade_write, \
    up_read, up_write
from . import memory, mmu_notifier as mn, page_alloc


@kfunc("mm/madvise.c")
async def madvise_dontneed(mm, start: int, end: int) -> None:
    """mm/madvise.c: madvise(MADV_DONTNEED) -> madvise_dontneed_single_vma ->
    zap_page_range_single, under mmap_read_lock."""
    await down_read(mm.mmap_lock)
    vma = mm.find_vma(start)
    if vma is not None:
        await memory.zap_page_range_single(vma, max(start, vma.vm_start),
                                           min(end, vma.vm_end))
    await up_read(mm.mmap_lock)


@kfunc("mm/vma.c")
async def __vm_munmap(mm, start: int, end: int) -> int:
    """mm/vma.c (mm/mmap.c before v6.15): __vm_munmap, munmap(2)'s body:
    mmap_write_lock_killable -- -EINTR if a fatal signal ends the wait -- then
    do_vmi_munmap with unlock=true (the lock is downgraded and dropped inside)."""
    if await down_write_killable(mm.mmap_lock):     # mmap_write_lock_killable
        return EINTR
    await do_vmi_align_munmap(mm, start, end)
    return 0


@kfunc("mm/vma.c")
async def do_vmi_align_munmap(mm, start: int, end: int) -> None:
    """mm/vma.c: do_vmi_munmap -> do_vmi_align_munmap, called with mmap_write_lock held
    and unlock=true: detach the VMA, downgrade, then unmap it (notifier start/end,
    blockable) under the read lock, free the pages and drop the lock."""
    vma = mm.find_vma(start)
    if vma is None:
        await up_write(mm.mmap_lock)
        return
    await Op((mm, "vmas"), WRITE, f"vma_iter_clear({vma.name})")
    mm.vmas.remove(vma)
    vma.detached = True
    await downgrade_write(mm.mmap_lock)
    await vms_complete_munmap_vmas(mm, vma)
    await up_read(mm.mmap_lock)


@kfunc("mm/vma.c")
async def vms_complete_munmap_vmas(mm, vma) -> None:
    rng = mn.mmu_notifier_range(mm, vma.vm_start, vma.vm_end, blockable=True)
    tlb = memory.tlb_gather_mmu(mm)
    await mn.mmu_notifier_invalidate_range_start(rng)
    await memory.unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end)
    await mn.mmu_notifier_invalidate_range_end(rng)
    await memory.tlb_finish_mmu(tlb)


@kfunc("mm/rmap.c")
async def try_to_unmap_one(vma, addr: int) -> None:
    """mm/rmap.c: try_to_unmap_one (reclaim, migration): no mmap_lock at all -- the folio
    lock and the anon_vma lock -- around a blockable invalidation of one page."""
    rng = mn.mmu_notifier_range(vma.vm_mm, addr, addr + 1, blockable=True, event="CLEAR")
    await mn.mmu_notifier_invalidate_range_start(rng)
    await memory.pte_offset_map_lock(vma)
    await Op((vma, "ptes"), WRITE, f"ptep_clear_flush({vma.name} @{addr})")
    p = vma.ptes.pop(addr, None)
    await memory.pte_unmap_unlock(vma)
    await mn.mmu_notifier_invalidate_range_end(rng)
    if p is not None:
        await memory.put_page(p)


@kfunc("mm/vmscan.c")
async def shrink_folio_list(vma, addr: int) -> None:
    """mm/vmscan.c: kswapd reclaiming one page of the VM's memory, holding fs_reclaim as
    balance_pgdat (its caller in kswapd, not modelled) does around the shrinking."""
    page_alloc.__fs_reclaim_acquire()
    await try_to_unmap_one(vma, addr)
    page_alloc.__fs_reclaim_release()
