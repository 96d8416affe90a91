"""mm/slub.c and mm/kasan/report.c: kmalloc() and kfree().  A GFP_ATOMIC allocation
cannot sleep to reclaim and may fail; with FAIL_GFP_ATOMIC set, every such allocation is a
choice the checker explores both ways.

kfree() poisons the object: a later access to one of its fields through the model's
shared-field accessors (load/store, READ_ONCE/WRITE_ONCE, ...) is reported as KASAN's
slab-use-after-free, once per object, where it happens."""

from __future__ import annotations

from ...engine import Choice
from ...engine import Report, current_execution
from ..kernel.core import call_trace, culprit, kernel, kfunc
from ..kernel.sched import current, format_call_trace

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
    from .memory import might_alloc
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


def kasan_check(obj, field: str, write: bool) -> None:
    """mm/kasan: the check compiled into every access of ``obj->field``; a poisoned
    (kfree()d) object is reported once."""
    freed = getattr(obj, "kasan_freed", None)
    if freed is None or getattr(obj, "kasan_reported", False):
        return
    obj.kasan_reported = True
    k = kernel()
    ts = current()
    trace = call_trace()
    fn = culprit(trace, ts.comm)
    name = getattr(obj, "cname", type(obj).__name__)
    bar = "=" * 66
    kind = getattr(obj, "kasan_kind", "slab-use-after-free")   # or a dead stack frame's
    head = f"BUG: KASAN: {kind}" if k.config.KASAN else "kmodel: use-after-free"
    by_comm, by_pid, by_trace = freed
    lines = [bar, f"{head} in {fn}",
             f"{'Write' if write else 'Read'} of {name}->{field} by task {ts.comm}/{ts.pid}",
             ""] + k.banner(ts) + format_call_trace(trace) + [
        ""] + (
        [f"Freed by task {by_comm}/{by_pid}:", "  kfree"] + [f"  {f}" for f in by_trace] + [
            "", f"The buggy address belongs to the object {name} "
                f"(struct {type(obj).__name__})"]
        if not kind.startswith("stack") else
        [f"The buggy address belongs to stack of task {by_comm}/{by_pid}, in the frame of "
         f"{by_trace[0] if by_trace else '?'}, which has returned:"] +
        [f"  {f}" for f in by_trace] + [f"  (the object {name}, struct {type(obj).__name__})"]
    ) + [bar]
    current_execution().report(Report("use-after-free",
                                      f"{kind}: {name} used after "
                                      f"{'its frame returned' if kind.startswith('stack') else 'kfree'}",
                                      ts.comm, fn, trace, "\n".join(lines)))
