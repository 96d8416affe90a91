"""kernel/workqueue.c: work items run in kworker tasks.

queue_work() starts a kworker task for the item (kworkers are plentiful; the model gives
each item its own, named after the work function, so reports name what ran).  Each
kworker is a new task that happens-after the queueing step.
"""

from __future__ import annotations

from ...engine import WRITE, Op, current_execution
from .core import kernel, kfunc


class work_struct:
    def __init__(self, func, name: str):
        self.func = func
        self.name = name
        self.pending = False


def spawn_kworker(what: str, coro):
    """Start a kworker task running ``coro``."""
    from .sched import task_struct
    ex = current_execution()
    base = f"kworker/{what}"
    name, n = base, 1
    while name in ex.by_name:
        n += 1
        name = f"{base}#{n}"
    k = kernel()
    ts = task_struct(name, k.alloc_pid(), len(ex.tasks), kthread=True)
    return ex.spawn(name, coro, ctx=ts)


@kfunc("kernel/workqueue.c")
async def queue_work(work: work_struct) -> bool:
    """workqueue.c: queue_work: returns false if the item was already pending."""
    await Op(work, WRITE, f"queue_work({work.name})")
    if work.pending:
        return False
    work.pending = True
    spawn_kworker(work.name, process_one_work(work))
    return True


@kfunc("kernel/workqueue.c")
async def process_one_work(work: work_struct) -> None:
    await Op(work, WRITE, f"process_one_work({work.name})")
    work.pending = False
    await work.func(work)


class workqueue_struct:
    """alloc_ordered_workqueue(): one item at a time, in queueing order, on one kworker
    that idles when the queue is empty."""

    def __init__(self, name: str):
        self.name = name
        self.cname = name
        self.items: list[work_struct] = []
        self.worker = None


@kfunc("kernel/workqueue.c")
async def queue_work_ordered(wq: workqueue_struct, work: work_struct) -> bool:
    await Op(wq, WRITE, f"queue_work({wq.name}, {work.name})")
    if work.pending:
        return False
    work.pending = True
    wq.items.append(work)
    if wq.worker is None:
        wq.worker = spawn_kworker(wq.name, _ordered_worker(wq))
    return True


@kfunc("kernel/workqueue.c")
async def _ordered_worker(wq: workqueue_struct) -> None:
    from .sched import Blocked
    while True:
        await Blocked(wq, WRITE, f"worker_thread({wq.name}) idle", lambda: bool(wq.items),
                      "I")
        work = wq.items.pop(0)
        work.pending = False
        await work.func(work)
