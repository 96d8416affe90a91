"""kernel/exit.c: a thread's exit.  exit_mm drops the thread's mm_users reference (the
last one runs exit_mmap); exit_files then drops its file references -- for a VM the last
close of the VM or vCPU fd drops kvm->users_count, and the last of those runs
kvm_destroy_vm."""

from __future__ import annotations

from ...engine import WRITE, Op
from .core import kfunc
from .sched import current


@kfunc("kernel/exit.c")
async def do_exit(code: int = 9) -> None:
    ts = current()
    await exit_mm()
    await exit_files()
    ts.exited = True


@kfunc("kernel/exit.c")
async def exit_mm() -> None:
    """kernel/exit.c: exit_mm: under mmap_read_lock and task_lock, current->mm = NULL
    (so find_lock_task_mm no longer picks this thread), then mmput."""
    from ..mm.mmap import mmput
    from .locking.rwsem import down_read, up_read
    from .locking.spinlock import spin_lock, spin_unlock
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


@kfunc("fs/file.c")
async def exit_files() -> None:
    """Drop the thread's file references: ``ts.files`` holds coroutine functions that
    release one file each (kvm_vm_release, kvm_vcpu_release)."""
    ts = current()
    files, ts.files = list(getattr(ts, "files", [])), []
    for release in files:
        await release()
