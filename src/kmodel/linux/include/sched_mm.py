"""include/linux/sched/mm.h: the reference counts of an mm_struct, as its callers take and
drop them (mmput, which may tear the address space down, is kernel/fork.py's).

- ``mm_count`` (mmgrab/mmdrop) keeps the struct itself: the last mmdrop frees it
  (__mmdrop -> free_mm, a kmem_cache_free: with KASAN the object is poisoned).
- ``mm_users`` (mmget/mmget_not_zero, and kernel/fork.c's mmput) keeps the address space.

Both are atomic_t: the kernel does not check them.  A drop below zero shows as what it
is -- an access to the freed mm_struct, which KASAN reports ("slab-use-after-free ...
Write of mm_struct->mm_count").

mmdrop's out-of-line half, __mmdrop and free_mm, is kernel/fork.c's but lives here: the
header's inline mmdrop calls it, and mm/mmu_notifier.c's mmdrop would otherwise import
kernel/fork.py, which reaches mm/mmap.c's exit_mmap and through it mmu_notifier_release
(a circle of imports the kernel's linker does not mind and Python's modules should not
have).

Simplified: mmgrab/mmdrop/mmget are not visible ops of their own (they are atomic
increments and decrements done next to the caller's other steps); mmget_not_zero, whose
result decides what the caller does next, is.
"""

from __future__ import annotations

from ..kernel.core import kfunc
from ..kernel.panic import WARN_ON_ONCE
from ..kernel.sched import current
from ..mm.kasan import kasan_check
from ..mm.slab import kfree
from .rwonce import atomic_rmw


def _kasan_touch(mm, field: str) -> None:
    """The KASAN check compiled into atomic_inc/atomic_dec_and_test of mm->field."""
    if getattr(mm, "kasan_freed", None) is not None:
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
    WARN_ON_ONCE(current().mm is mm, "mm == current->mm")
    free_mm(mm)


def free_mm(mm) -> None:
    """kernel/fork.c: free_mm: kmem_cache_free(mm_cachep, mm); KASAN poisons it."""
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
