"""kernel/entry/common.c: the way back to userspace after a syscall, and userspace.

exit_to_user_mode_loop handles the work flags before the task returns: a pending signal
(arch_do_signal_or_restart -> get_signal, which also runs task work; SIGKILL ends in
do_group_exit) and TIF_NOTIFY_RESUME (resume_user_mode_work -> task_work_run, where a
file's deferred ____fput runs ->release).
"""

from __future__ import annotations

from ...engine import READ
from .core import kfunc
from .sched import Blocked, current, sigpending
from .signal import get_signal
from .task_work import task_work_pending, task_work_run


@kfunc("kernel/entry/common.c")
async def syscall_exit_to_user_mode() -> None:
    """kernel/entry/common.c: syscall_exit_to_user_mode -> exit_to_user_mode_loop:
    signals first (get_signal), then the remaining task work (resume_user_mode_work)."""
    ts = current()
    if ts.sigkill_pending:
        await get_signal()                 # a fatal signal: does not come back
    if task_work_pending(ts):
        await task_work_run()


async def in_userspace() -> None:
    """The thread runs userspace code from here on.  It enters the kernel again only
    when a fatal signal interrupts it (the kick_process IPI of signal_wake_up), and then
    exits; without one it stays in userspace to the end of the run, which is not a
    sleep anybody reports ('U')."""
    ts = current()
    await Blocked(sigpending(ts), READ, "userspace (until a fatal signal)",
                  lambda: ts.sigkill_pending, "U")
    await get_signal()
