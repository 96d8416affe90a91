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
    from ..mm.mmap import mmput
    ts = current()
    mm = ts.mm
    if mm is None:
        return
    await Op(ts, WRITE, "current->mm = NULL")
    ts.mm = None
    await mmput(mm)


@kfunc("fs/file.c")
async def exit_files() -> None:
    """Drop the thread's file references: ``ts.files`` holds coroutine functions that
    release one file each (kvm_vm_release, kvm_vcpu_release)."""
    ts = current()
    files, ts.files = list(getattr(ts, "files", [])), []
    for release in files:
        await release()
