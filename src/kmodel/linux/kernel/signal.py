"""kernel/signal.c (and include/linux/sched/signal.h): fatal signals and group exit.

A thread group (a process) shares one ``signal_struct``: its threads, ``live`` (threads
not yet in do_exit), SIGNAL_GROUP_EXIT once the group is dying, and the OOM killer's
``oom_mm``.  A SIGKILL sent to the group (the OOM killer, lmkd) or an exit_group() puts
SIGKILL in every thread's pending set and wakes each one from an interruptible or
killable sleep (signal_wake_up); each thread then leaves the kernel at its next return
to userspace (get_signal -> do_group_exit -> do_exit), or earlier where a killable wait
gives up.

Simplified: sighand->siglock is not modelled as a lock; each thread's signal delivery
is one visible step on that thread (what the woken thread and fatal_signal_pending()
observe), which is the order the lock imposes for what the model looks at.
"""

from __future__ import annotations

from ...engine import WRITE, Op
from .core import kfunc
from .exit import do_exit
from .sched import TASK_INTERRUPTIBLE, TASK_WAKEKILL, current, sigpending, \
    wake_up_state_locked
from .task_work import task_work_pending, task_work_run

SIGKILL = 9
SIGNAL_GROUP_EXIT = 0x00000004
PIDTYPE_TGID = 1


class signal_struct:
    """include/linux/sched/signal.h: struct signal_struct, the part shared by the
    threads of one process."""

    def __init__(self, name: str):
        self.name = name
        self.cname = f"{name}->signal"
        self.threads: list = []           # the thread list, the group leader first
        self.live = 0                     # threads not yet in do_exit
        self.flags = 0
        self.group_exit_code = 0
        self.oom_mm = None

    @property
    def exiting(self) -> bool:
        """SIGNAL_GROUP_EXIT: the whole group is on its way out."""
        return bool(self.flags & SIGNAL_GROUP_EXIT)


def signal_group_exit(sig: signal_struct) -> bool:
    return bool(sig.flags & SIGNAL_GROUP_EXIT)


async def signal_wake_up(t, fatal: bool) -> None:
    """include/linux/sched/signal.h: signal_wake_up -> signal_wake_up_state(t, fatal ?
    TASK_WAKEKILL : 0) -> TIF_SIGPENDING, then wake_up_state(t, state |
    TASK_INTERRUPTIBLE): a fatal signal wakes an interruptible or killable sleeper, never
    a plain TASK_UNINTERRUPTIBLE one.  Two steps: the signal into t's pending set
    (what fatal_signal_pending() and a thread in userspace look at), then the wake-up
    of t's sleep (what schedule() waits on); the kernel orders them the same way."""
    state = (TASK_WAKEKILL if fatal else 0) | TASK_INTERRUPTIBLE
    await Op(sigpending(t), WRITE, f"sigaddset(&{t.comm}->pending, SIGKILL)")
    t.sigkill_pending = True
    await Op(t, WRITE, f"signal_wake_up({t.comm}, SIGKILL)")
    wake_up_state_locked(t, state)


@kfunc("kernel/signal.c")
async def complete_signal(sig: int, p) -> None:
    """kernel/signal.c: complete_signal for a fatal signal to the group: unless the group
    is already exiting, SIGNAL_GROUP_EXIT, then SIGKILL queued to every thread and each
    one woken (signal_wake_up(t, 1))."""
    signal = p.signal
    if signal_group_exit(signal):
        return
    signal.flags = SIGNAL_GROUP_EXIT
    signal.group_exit_code = sig
    for t in list(signal.threads):
        if getattr(t, "exited", False):
            continue
        await signal_wake_up(t, True)


@kfunc("kernel/signal.c")
async def do_send_sig_info(sig: int, p, type_: int = PIDTYPE_TGID) -> None:
    """kernel/signal.c: do_send_sig_info(SIGKILL, SEND_SIG_PRIV, p, PIDTYPE_TGID) ->
    send_signal_locked -> complete_signal: a group-wide SIGKILL."""
    await complete_signal(sig, p)


@kfunc("kernel/signal.c")
async def zap_other_threads(p) -> int:
    """kernel/signal.c: zap_other_threads (siglock held by do_group_exit): SIGKILL to
    every other thread of the group, each woken by signal_wake_up(t, 1)."""
    count = 0
    for t in list(p.signal.threads):
        if t is p or getattr(t, "exited", False):
            continue
        count += 1
        await signal_wake_up(t, True)
    return count


@kfunc("kernel/exit.c")
async def do_group_exit(exit_code: int) -> None:
    """kernel/exit.c: do_group_exit: unless the group is already exiting (a fatal
    signal did it), SIGNAL_GROUP_EXIT and zap_other_threads; then do_exit.  exit_group()
    and a fatal signal's get_signal() both end here."""
    ts = current()
    sig = ts.signal
    if not signal_group_exit(sig):
        sig.group_exit_code = exit_code
        sig.flags = SIGNAL_GROUP_EXIT
        await zap_other_threads(ts)
    await do_exit(sig.group_exit_code or exit_code)


@kfunc("kernel/signal.c")
async def get_signal() -> bool:
    """kernel/signal.c: get_signal: run pending task work first, then dequeue; SIGKILL
    is fatal: do_group_exit(SIGKILL) does not return."""
    ts = current()
    if task_work_pending(ts):
        await task_work_run()
    if ts.sigkill_pending:
        await do_group_exit(SIGKILL)
        return True
    return False
