"""kernel/hung_task.c and kernel/watchdog.c: what the kernel says about tasks that can
never run again.

When no task can make progress, each stuck task is classified as the kernel would see it:
asleep in TASK_UNINTERRUPTIBLE (not killable, not idle) -> khungtaskd's "blocked for more
than 120 seconds"; spinning on a lock -> the soft-lockup watchdog; an idle, interruptible
or killable sleeper, or a thread back in userspace -> nothing (task_is_hung in
kernel/hung_task.c skips every state but plain TASK_UNINTERRUPTIBLE: "skip the
TASK_KILLABLE tasks -- these can be killed", "skip the TASK_IDLE tasks"); anything else
(an RT lock waiter, TASK_RTLOCK_WAIT, which khungtaskd does not see) -> a plain deadlock
report from the model.
"""

from __future__ import annotations

from ..lib.dump_stack import UTS_RELEASE, dump_stack, format_call_trace, print_tainted, \
    report_splat
from .core import culprit, kernel

HUNG_TASK_TIMEOUT = 120
# Blocked.how of the waits nobody reports: TASK_INTERRUPTIBLE, TASK_IDLE, TASK_KILLABLE,
# and a thread running in userspace
QUIET_STATES = ("S", "I", "K", "U")


def report_stuck_tasks(ex, blocked) -> None:
    k = kernel()
    for task in blocked:
        ts = task.ctx
        op = task.pending
        how = getattr(op, "how", "?")
        trace = list(reversed(task.frames))
        fn = culprit(trace, task.name)
        if how == "D" and k.config.HUNG_TASK:
            lines = [f"INFO: task {ts.comm}:{ts.pid} blocked for more than "
                     f"{HUNG_TASK_TIMEOUT} seconds.",
                     f"      {print_tainted()} {UTS_RELEASE} #1",
                     '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this '
                     "message.",
                     f"task:{ts.comm:<15} state:D stack:0     pid:{ts.pid}",
                     f"  waiting at: {op.label}"] + format_call_trace(["__schedule", "schedule"]
                                                                      + [f for f in trace
                                                                         if f != "schedule"])
            report_splat("hung-task", f"INFO: task {ts.comm} blocked for more than "
                         f"{HUNG_TASK_TIMEOUT} seconds", lines, ts, trace, fn, ex)
        elif how == "R" and k.config.SOFTLOCKUP_DETECTOR:
            lines = [f"watchdog: BUG: soft lockup - CPU#{ts.cpu} stuck for 22s! "
                     f"[{ts.comm}:{ts.pid}]", f"  spinning at: {op.label}"] + \
                dump_stack(ts, trace)
            report_splat("soft-lockup", f"soft lockup in {ts.comm}", lines, ts, trace, fn, ex)
        elif how in QUIET_STATES:
            continue        # not TASK_UNINTERRUPTIBLE alone: task_is_hung skips it
        else:
            lines = [f"kmodel: deadlock: {ts.comm}:{ts.pid} can never run again",
                     f"  waiting at: {op.label} (state {how})"] + format_call_trace(trace)
            report_splat("deadlock", f"deadlock: {ts.comm} stuck at {fn}", lines, ts, trace,
                         fn, ex)
