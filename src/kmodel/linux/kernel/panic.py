"""kernel/panic.c and include/asm-generic/bug.h: WARN_ON, WARN_ON_ONCE, BUG_ON.

A WARNING is reported where the modelled function stands and execution goes on; BUG()
reports and ends the task, as an oops kills the current task.
"""

from __future__ import annotations

from ..lib.dump_stack import dump_stack, report_splat
from .core import SOURCES, call_trace, kernel
from .sched import current, do_exit_now


def _site() -> tuple[str, str]:
    trace = call_trace()
    fn = trace[0] if trace else current().comm
    return fn, SOURCES.get(fn, "?")


def __warn(cond_text: str, macro: str) -> None:
    """kernel/panic.c: __warn: the "cut here" WARNING with registers elided."""
    k = kernel()
    ts = current()
    fn, src = _site()
    lines = ["------------[ cut here ]------------",
             f"WARNING: CPU: {ts.cpu} PID: {ts.pid} at {src} {fn}",
             f"{macro}({cond_text})",
             "Modules linked in: kvm_intel kvm"] + dump_stack(ts, call_trace()) + \
        ["---[ end trace 0000000000000000 ]---"]
    k.tainted = True
    report_splat("warn", f"WARNING in {fn}: {macro}({cond_text})", lines, ts, call_trace(),
                 fn)


def WARN_ON(cond, cond_text: str) -> bool:
    if cond:
        __warn(cond_text, "WARN_ON")
    return bool(cond)


def WARN_ON_ONCE(cond, cond_text: str) -> bool:
    if cond:
        fn, _ = _site()
        key = (fn, cond_text)
        k = kernel()
        if key not in k.warned_once:
            k.warned_once.add(key)
            __warn(cond_text, "WARN_ON_ONCE")
    return bool(cond)


def BUG_ON(cond, cond_text: str) -> None:
    if not cond:
        return
    ts = current()
    fn, src = _site()
    lines = [f"kernel BUG at {src}!", "Oops: invalid opcode: 0000 [#1] SMP"] + \
        dump_stack(ts, call_trace())
    report_splat("bug", f"kernel BUG in {fn}: BUG_ON({cond_text})", lines, ts, call_trace(),
                 fn)
    do_exit_now()
