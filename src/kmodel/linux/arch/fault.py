"""The kernel's page-fault oops for a NULL pointer dereference in kernel mode:
arch/x86/mm/fault.c (page_fault_oops, show_fault_oops) and arch/arm64/mm/fault.c
(die_kernel_fault).  The faulting task is killed where it stands (make_task_dead), with
whatever it holds still held -- as an oops leaves it."""

from __future__ import annotations

from ..kernel.core import call_trace, culprit, kernel
from ..kernel.sched import current, do_exit_now
from ..lib.dump_stack import dump_stack_print_info, format_call_trace, report_splat


def null_pointer_dereference(expr: str, offset: int, write: bool) -> None:
    """``expr`` is the C access through the NULL pointer (the report names it in the
    model's own line), ``offset`` the field's offset, so the address the oops prints."""
    k = kernel()
    ts = current()
    trace = call_trace()
    fn = culprit(trace, ts.comm)
    addr = f"{offset:016x}"
    if k.arch == "arm64":
        head = [f"Unable to handle kernel NULL pointer dereference at virtual address {addr}",
                "Mem abort info:",
                f"  ESR = 0x{0x96000046 if write else 0x96000006:016x}",
                f"Internal error: Oops: {0x96000046 if write else 0x96000006:016x} [#1] SMP"]
    else:
        head = [f"BUG: kernel NULL pointer dereference, address: {addr}",
                f"#PF: supervisor {'write' if write else 'read'} access in kernel mode",
                f"#PF: error_code(0x000{2 if write else 0}) - not-present page",
                f"Oops: Oops: 000{2 if write else 0} [#1] SMP"]
    lines = head + dump_stack_print_info(ts) + [f"RIP: 0010:{fn}"] + \
        format_call_trace(trace) + [f"kmodel: the faulting access is {expr}"]
    k.tainted = True
    report_splat("bug", f"BUG: kernel NULL pointer dereference in {fn}", lines, ts, trace, fn)
    do_exit_now()
