"""mm/slub.c: kmalloc().  A GFP_ATOMIC allocation cannot sleep to reclaim and may fail;
with FAIL_GFP_ATOMIC set, every such allocation is a choice the checker explores both
ways."""

from __future__ import annotations

from ...engine import Choice
from ..kernel.core import kernel, kfunc
from ..kernel.sched import might_sleep

GFP_KERNEL = "GFP_KERNEL"
GFP_ATOMIC = "GFP_ATOMIC"


class Allocation:
    def __init__(self, what: str):
        self.what = what
        self.freed = False


@kfunc("mm/slub.c")
async def kmalloc(what: str, gfp: str):
    """Returns an Allocation, or None when a GFP_ATOMIC allocation fails."""
    if gfp == GFP_KERNEL:
        might_sleep("mm/slub.c", 4262)
        return Allocation(what)
    if kernel().config.FAIL_GFP_ATOMIC:
        if await Choice(2, f"kmalloc({what}, GFP_ATOMIC) fails"):
            return None
    return Allocation(what)


def kfree(obj) -> None:
    if obj is not None:
        obj.freed = True
