"""include/linux/rcuwait.h and kernel/exit.c: a single-waiter wait primitive.

The waiter publishes itself with prepare_to_rcuwait(); only rcuwait_wake_up() wakes it,
and only if it is still published.  No timeout: if nobody wakes it, it sleeps forever.
"""

from __future__ import annotations

from ...engine import READ, WRITE, Op
from .core import kfunc
from .rcu.rcupdate import rcu_read_lock, rcu_read_unlock
from .sched import TASK_RUNNING, __set_current_state, current, wake_up_process


class rcuwait:
    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.task = None


async def prepare_to_rcuwait(w: rcuwait) -> None:
    """rcu_assign_pointer(w->task, current)."""
    await Op(w, WRITE, f"prepare_to_rcuwait({w.name})")
    w.task = current()


async def finish_rcuwait(w: rcuwait) -> None:
    """rcu_assign_pointer(w->task, NULL); __set_current_state(TASK_RUNNING)."""
    await Op(w, WRITE, f"finish_rcuwait({w.name})")
    w.task = None
    __set_current_state(TASK_RUNNING)


async def rcuwait_active(w: rcuwait) -> bool:
    """!!rcu_access_pointer(w->task): unserialised by design."""
    await Op(w, READ, f"rcuwait_active({w.name})")
    return w.task is not None


@kfunc("kernel/exit.c")
async def rcuwait_wake_up(w: rcuwait) -> bool:
    """kernel/exit.c: rcuwait_wake_up: smp_mb() (barrier B), then wake the published
    task, if any."""
    rcu_read_lock()
    await Op(w, READ, f"rcuwait_wake_up({w.name})")
    task = w.task
    woken = False
    if task is not None:
        woken = await wake_up_process(task)
    rcu_read_unlock()
    return woken
