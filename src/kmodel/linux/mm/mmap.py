"""mm/mmap.c and kernel/fork.c: exit_mmap and mmput, the end of an address space."""

from __future__ import annotations

from ...engine import WRITE, Op
from ..kernel.core import kfunc, set_bit
from ..kernel.locking.rwsem import down_read, down_write, up_read, up_write
from . import memory, mmu_notifier as mn
from .mm_types import MMF_OOM_SKIP


@kfunc("kernel/fork.c")
async def mmput(mm) -> None:
    """kernel/fork.c: mmput: the last user tears the address space down."""
    await Op((mm, "mm_users"), WRITE, "atomic_dec_and_test(&mm->mm_users)")
    mm.mm_users -= 1
    if mm.mm_users == 0:
        await __mmput(mm)


@kfunc("kernel/fork.c")
async def __mmput(mm) -> None:
    await exit_mmap(mm)
    mn.mmdrop(mm)


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
