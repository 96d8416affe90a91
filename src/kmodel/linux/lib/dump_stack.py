"""lib/dump_stack.c, and the one place a splat becomes a report of the execution.

A detector writes its splat's own lines (the BUG or WARNING line, what it found) and takes
the rest from here: the task line every dump_stack() prints (``dump_stack_print_info``),
the call trace (``format_call_trace``), both at once (``dump_stack``), the taint and
release strings of the headers (``print_tainted``, ``UTS_RELEASE``); ``report_splat``
hands the finished splat to the checker."""

from __future__ import annotations

from ...engine import Report, current_execution
from ..kernel.core import culprit, kernel

UTS_RELEASE = "7.0.0-kmodel"


def print_tainted() -> str:
    """kernel/panic.c: print_tainted: W once a WARNING (or a BUG that goes on) fired."""
    return "Tainted: G        W" if kernel().tainted else "Not tainted"


def dump_stack_print_info(ts) -> list[str]:
    """lib/dump_stack.c: dump_stack_print_info: the task, the kernel and the machine."""
    flavour = " PREEMPT_RT" if kernel().config.PREEMPT_RT else " PREEMPT(full)"
    return [f"CPU: {ts.cpu} UID: 0 PID: {ts.pid} Comm: {ts.comm} {print_tainted()} "
            f"{UTS_RELEASE} #1{flavour}",
            "Hardware name: kmodel virtual machine"]


def format_call_trace(trace: list[str]) -> list[str]:
    """arch/x86/kernel/dumpstack.c: show_trace_log_lvl: the modelled call chain, innermost
    first."""
    return ["Call Trace:", " <TASK>"] + [f"  {fn}" for fn in trace] + [" </TASK>"]


def dump_stack(ts, trace: list[str]) -> list[str]:
    """lib/dump_stack.c: dump_stack: the task line, then the call trace."""
    return dump_stack_print_info(ts) + format_call_trace(trace)


def report_splat(kind: str, title: str, lines: list[str], ts, trace: list[str],
                 function: str | None = None, ex=None) -> None:
    """The splat ``lines`` as a report of the execution (``ex``, default the running
    one): ``kind`` and ``title`` identify it, ``function`` is where it points (default:
    the first frame of ``trace`` past the detectors and the locking primitives)."""
    fn = culprit(trace, ts.comm) if function is None else function
    (ex or current_execution()).report(Report(kind, title, ts.comm, fn, trace,
                                              "\n".join(lines)))
