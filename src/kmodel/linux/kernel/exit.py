"""kernel/exit.c: a thread's exit.

do_exit in the kernel's order for what the model holds: PF_EXITING (exit_signals),
signal->live--, exit_mm (this thread's mm_users reference; the last one runs
exit_mmap), exit_files (this thread's files_struct reference; the last thread closes
every fd, and a file's last fput queues its ->release as task work), exit_task_work
(runs that ->release: for a VM, kvm_vm_release / kvm_vcpu_release and, with the last
kvm reference, kvm_destroy_vm), exit_notify.  So the files of a process -- the VM fd --
go only with its last thread, after that thread's exit_mm.
"""

from __future__ import annotations

from ...engine import WRITE, Op
from ..fs.file import exit_files
from .core import kfunc
from .fork import mmput
from .locking.rwsem import down_read, up_read
from .locking.spinlock import spin_lock, spin_unlock
from .sched import current, do_exit_now
from .task_work import exit_task_work


@kfunc("kernel/exit.c")
async def do_exit(code: int = 9) -> None:
    ts = current()
    ts.exiting = True                          # exit_signals: PF_EXITING
    if ts.signal is not None:
        ts.signal.live -= 1                    # group_dead = atomic_dec_and_test(&live)
    await exit_mm()
    await exit_files(ts)
    await exit_task_work(ts)
    ts.exited = True                           # exit_notify
    do_exit_now()                              # __noreturn: the task is gone


@kfunc("kernel/exit.c")
async def exit_mm() -> None:
    """kernel/exit.c: exit_mm: under mmap_read_lock and task_lock, current->mm = NULL
    (so find_lock_task_mm no longer picks this thread), then mmput."""
    ts = current()
    mm = ts.mm
    if mm is None:
        return
    await down_read(mm.mmap_lock)
    await spin_lock(ts.alloc_lock)
    await Op(ts, WRITE, "current->mm = NULL")
    ts.mm = None
    await spin_unlock(ts.alloc_lock)
    await up_read(mm.mmap_lock)
    await mmput(mm)
