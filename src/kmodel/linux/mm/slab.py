"""mm/slub.c: kmalloc() and kfree().  A GFP_ATOMIC allocation cannot sleep to reclaim and
may fail; with FAIL_GFP_ATOMIC set, every such allocation is a choice the checker explores
both ways.

kfree() poisons the object: a later access to one of its fields through the model's
shared-field accessors (load/store, READ_ONCE/WRITE_ONCE, ...) is reported by KASAN
(mm/kasan.py) as a slab-use-after-free, once per object, where it happens."""

from __future__ import annotations

from ...engine import Choice
from ..kernel.core import call_trace, kernel, kfunc
from ..kernel.sched import current
from .page_alloc import might_alloc

GFP_KERNEL = "GFP_KERNEL"
GFP_ATOMIC = "GFP_ATOMIC"


class Allocation:
    def __init__(self, what: str):
        self.what = what
        self.freed = False


@kfunc("mm/slub.c")
async def kmalloc(what: str, gfp: str):
    """Returns an Allocation, or None when a GFP_ATOMIC allocation fails.  A GFP_KERNEL
    one goes through might_alloc() (lockdep's fs_reclaim, then might_sleep)."""
    if gfp == GFP_KERNEL:
        might_alloc(gfp)            # slab_pre_alloc_hook(): fs_reclaim, then might_sleep
        return Allocation(what)
    if kernel().config.FAIL_GFP_ATOMIC:
        if await Choice(2, f"kmalloc({what}, GFP_ATOMIC) fails"):
            return None
    return Allocation(what)


def kfree(obj) -> None:
    """mm/slub.c: kfree: with KASAN the object is poisoned (quarantined), so a later
    access is caught; who freed it is kept for the report."""
    if obj is None:
        return
    obj.freed = True
    ts = current()
    obj.kasan_freed = (ts.comm, ts.pid, call_trace())
