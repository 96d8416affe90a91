"""mm/mmap.c: exit_mmap, the end of an address space (mmput, its caller, is in
kernel/fork.py)."""

from __future__ import annotations

from ..include.bitops import set_bit
from ..kernel.core import kfunc
from ..kernel.locking.rwsem import down_read, down_write, up_read, up_write
from . import memory, mmu_notifier as mn
from .mm_types import MMF_OOM_SKIP


@kfunc("mm/mmap.c")
async def exit_mmap(mm) -> None:
    """mm/mmap.c: exit_mmap: mmu_notifier_release first (every secondary MMU drops its
    mappings and the subscriptions go), then unmap everything under mmap_read_lock,
    MMF_OOM_SKIP, then the write-locked teardown that frees the pages."""
    await mn.mmu_notifier_release(mm)
    await down_read(mm.mmap_lock)
    tlb = memory.tlb_gather_mmu(mm)
    for vma in mm.vmas:
        await memory.unmap_page_range(tlb, vma, vma.vm_start, vma.vm_end)
    await up_read(mm.mmap_lock)
    await set_bit(MMF_OOM_SKIP, mm)
    await down_write(mm.mmap_lock)
    await memory.tlb_finish_mmu(tlb)
    mm.vmas.clear()
    await up_write(mm.mmap_lock)
