"""mm/kasan/ (generic KASAN) and mm/kasan/report.c: the check compiled into every access
of a shared field, and the report of an access to poisoned memory.

kfree() (mm/slab.py) poisons an object, and a function that returns poisons the frame of
an on-stack object (``kasan_kind`` "stack-use-after-return"); the model's shared-field
accessors (include/rwonce.py) call ``kasan_check`` on each access of such an object."""

from __future__ import annotations

from ..kernel.core import call_trace, culprit, kernel
from ..kernel.sched import current
from ..lib.dump_stack import dump_stack, report_splat


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
             ""] + dump_stack(ts, trace) + [
        ""] + (
        [f"Freed by task {by_comm}/{by_pid}:", "  kfree"] + [f"  {f}" for f in by_trace] + [
            "", f"The buggy address belongs to the object {name} "
                f"(struct {type(obj).__name__})"]
        if not kind.startswith("stack") else
        [f"The buggy address belongs to stack of task {by_comm}/{by_pid}, in the frame of "
         f"{by_trace[0] if by_trace else '?'}, which has returned:"] +
        [f"  {f}" for f in by_trace] + [f"  (the object {name}, struct {type(obj).__name__})"]
    ) + [bar]
    report_splat("use-after-free",
                 f"{kind}: {name} used after "
                 f"{'its frame returned' if kind.startswith('stack') else 'kfree'}",
                 lines, ts, trace, fn)
