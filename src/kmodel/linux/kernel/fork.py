"""include/linux/sched/mm.h and kernel/fork.c: the two reference counts of an mm_struct.

- ``mm_count`` (mmgrab/mmdrop) keeps the struct itself: the last mmdrop frees it
  (__mmdrop -> free_mm, a kmem_cache_free: with KASAN the object is poisoned).
- ``mm_users`` (mmget/mmget_not_zero/mmput) keeps the address space: the last mmput tears
  it down (__mmput -> exit_mmap) and drops the mm_count reference the users share.

Both are atomic_t: the kernel does not check them.  A drop below zero shows as what it
is -- an access to the freed mm_struct, which KASAN reports ("slab-use-after-free ...
Write of mm_struct->mm_count") -- and a reference never dropped as a struct that is never
freed, which kmemleak reports (kmemleak_check_mm, for a run that should have freed it).

Simplified: mmgrab/mmdrop/mmget are not visible ops of their own (they are atomic
increments and decrements done next to the caller's other steps); mmput and
mmget_not_zero, whose result decides what the caller does next, are.
"""

from __future__ import annotations

from ...engine import Report, current_execution
from ..include.rwonce import atomic_rmw
from .core import kfunc
from .sched import current, might_sleep


def _kasan_touch(mm, field: str) -> None:
    """The KASAN check compiled into atomic_inc/atomic_dec_and_test of mm->field."""
    if getattr(mm, "kasan_freed", None) is not None:
        from ..mm.kasan import kasan_check
        kasan_check(mm, field, True)


def mmgrab(mm) -> None:
    """sched/mm.h: mmgrab: atomic_inc(&mm->mm_count) -- pins the struct, not the address
    space."""
    _kasan_touch(mm, "mm_count")
    mm.mm_count += 1


def mmdrop(mm) -> None:
    """sched/mm.h: mmdrop: atomic_dec_and_test(&mm->mm_count), the last one __mmdrop."""
    _kasan_touch(mm, "mm_count")
    mm.mm_count -= 1
    if mm.mm_count == 0:
        __mmdrop(mm)


def __mmdrop(mm) -> None:
    """kernel/fork.c: __mmdrop: WARN_ON_ONCE(mm == current->mm), then (past the teardown
    of what the model does not have) free_mm: the mm_struct goes back to mm_cachep."""
    from .panic import WARN_ON_ONCE
    WARN_ON_ONCE(current().mm is mm, "mm == current->mm")
    free_mm(mm)


def free_mm(mm) -> None:
    """kernel/fork.c: free_mm: kmem_cache_free(mm_cachep, mm); KASAN poisons it."""
    from ..mm.slab import kfree
    kfree(mm)


def mmget(mm) -> None:
    """sched/mm.h: mmget: atomic_inc(&mm->mm_users)."""
    _kasan_touch(mm, "mm_users")
    mm.mm_users += 1


@kfunc("include/linux/sched/mm.h", inline=True)
async def mmget_not_zero(mm) -> bool:
    """sched/mm.h: mmget_not_zero: atomic_inc_not_zero(&mm->mm_users)."""
    n = await atomic_rmw(mm, "mm_users", lambda v: v + 1 if v else v,
                         "atomic_inc_not_zero(&mm->mm_users)")
    return n != 0


@kfunc("kernel/fork.c")
async def mmput(mm) -> None:
    """kernel/fork.c: mmput: might_sleep(); the last user tears the address space down."""
    might_sleep("kernel/fork.c", 1162)
    if await atomic_rmw(mm, "mm_users", lambda v: v - 1,
                        "atomic_dec_and_test(&mm->mm_users)") == 0:
        await __mmput(mm)


@kfunc("kernel/fork.c")
async def __mmput(mm) -> None:
    """kernel/fork.c: __mmput: exit_mmap, then the users' mm_count reference goes."""
    from ..mm.mmap import exit_mmap
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
