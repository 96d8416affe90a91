"""fs/ioctl.c: the ioctl(2) entry point."""

from __future__ import annotations

from ..kernel.core import kfunc
from .file import EBADF, fdget, fdput

ENOTTY = -25


@kfunc("fs/ioctl.c")
async def ksys_ioctl(fd: int, cmd: str, arg=None) -> int:
    """fs/ioctl.c: SYSCALL_DEFINE3(ioctl): fdget(fd) (-EBADF if the fd is not open),
    vfs_ioctl -> f_op->unlocked_ioctl, fdput.  The file -- and what its ->release would
    free -- lives at least as long as the call."""
    f = await fdget(fd)
    if f is None:
        return EBADF
    error = ENOTTY
    if f.f_op.unlocked_ioctl is not None:
        error = await f.f_op.unlocked_ioctl(f, cmd, arg)
    await fdput(f)
    return error
