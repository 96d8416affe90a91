"""kernel/task_work.c: work a task runs on its own way back to userspace (or at exit).

fput() of a file's last reference from a user task queues ``____fput`` here, so that
``->release`` runs outside whatever locks the caller held (fs/file_table.c).  Only the
task itself adds work to its list in the model (fput is always called by current), so
the list is the task's private state: adding is not a visible step.
"""

from __future__ import annotations

from .core import kfunc
from .sched import current


def task_work_add(task, work) -> int:
    """kernel/task_work.c: task_work_add: queue ``work`` (a coroutine function of no
    argument) on ``task``; fails with -ESRCH once the task has run its last task work in
    do_exit (exit_task_work), as the kernel's work_exited marker makes it."""
    if getattr(task, "task_works_exited", False):
        return -3
    task.task_works.append(work)
    return 0


def task_work_pending(task) -> bool:
    return bool(task.task_works)


@kfunc("kernel/task_work.c")
async def task_work_run() -> None:
    """kernel/task_work.c: task_work_run: run the queued works, including any queued by
    the works themselves, in the order they were added."""
    ts = current()
    while ts.task_works:
        work = ts.task_works.pop(0)
        await work()


async def exit_task_work(task) -> None:
    """include/linux/task_work.h: exit_task_work: the last run, in do_exit; after it no
    work can be added."""
    await task_work_run()
    task.task_works_exited = True
