"""kernel/fork.c: mmput, the drop of an mm_struct's ``mm_users`` (the address space): the
last mmput tears it down (__mmput -> exit_mmap) and drops the mm_count reference the
users share.  mmgrab/mmdrop/mmget/mmget_not_zero, and mmdrop's __mmdrop and free_mm,
are include/sched_mm.py's (include/linux/sched/mm.h).

Both counts are atomic_t: the kernel does not check them.  A reference never dropped
shows as a struct that is never freed, which kmemleak reports (kmemleak_check_mm, for a
run that should have freed it).

Simplified: mmput, whose result decides what the caller does next, is a visible op.
"""

from __future__ import annotations

from ...engine import Report, current_execution
from ..include.rwonce import atomic_dec_and_test
from ..include.sched_mm import mmdrop
from ..mm.mmap import exit_mmap
from .core import kfunc
from .sched import might_sleep


@kfunc("kernel/fork.c")
async def mmput(mm) -> None:
    """kernel/fork.c: mmput: might_sleep(); the last user tears the address space down."""
    might_sleep("kernel/fork.c", 1162)
    if await atomic_dec_and_test(mm, "mm_users", "atomic_dec_and_test(&mm->mm_users)",
                                 kasan=True):
        await __mmput(mm)


@kfunc("kernel/fork.c")
async def __mmput(mm) -> None:
    """kernel/fork.c: __mmput: exit_mmap, then the users' mm_count reference goes."""
    await exit_mmap(mm)
    mmdrop(mm)


def kmemleak_check_mm(ex, mm, why: str, pinned: int = 0) -> None:
    """mm/kmemleak.c's view at the end of a run in which every reference to ``mm`` should
    have been dropped (``why`` says why) but ``pinned`` references the kernel drops only
    later (signal->oom_mm, put when the zombie's signal_struct is freed): a struct still
    referenced beyond those is never freed, and kmemleak reports it as unreferenced."""
    if getattr(mm, "kasan_freed", None) is not None or mm.mm_count <= pinned:
        return
    lines = [f"unreferenced object {mm.cname} (size 1408):",
             f'  comm "{getattr(mm, "owner_comm", "qemu")}", jiffies 4294937296',
             f"  kmodel: mm_count is {mm.mm_count}, mm_users {mm.mm_users} at the end, "
             f"though {why}" + (f" ({pinned} kept by signal->oom_mm)" if pinned else ""),
             "  backtrace:", "    kmem_cache_alloc", "    mm_alloc"]
    current_execution().report(Report(
        "memory-leak", "kmemleak: 1 new suspected memory leaks (mm_struct)",
        "(end of run)", "kmemleak_check_mm", [], "\n".join(lines)))
