"""fs/file.c, fs/file_table.c and fs/open.c: open files and the descriptor table.

A ``file`` has a reference count (f_count): the descriptor table holds one while the fd
is open, and every syscall on the fd holds one for as long as it runs (fdget/fdput).
close() removes the fd from the table and drops the table's reference, running
->release at once if that was the last one (fput_close_sync); any other last fput --
an ioctl's fdput after a close, the last thread's exit closing its files -- defers
->release to task work (____fput), so it runs on that task's way back to userspace or
in its do_exit.  A syscall on an fd already closed fails with -EBADF before it reaches
the file.

The ``files_struct`` is shared by the threads of a process (CLONE_FILES): its count is
the number of threads using it, and the last thread's exit_files closes every fd.

Simplified: one descriptor table without resizing or RCU freeing; fdget always takes a
reference (the kernel skips it only for a single-threaded process, files->count == 1,
and every modelled process with an fd has several threads); the fd lookup, the
reference and __fget_files_rcu's re-check of the table are one step (while the fd is in
the table the table's own reference keeps f_count above zero, so the increment cannot
fail there); sighand/file_lock are not separate locks (each table change is one step).
"""

from __future__ import annotations

from ...engine import READ, WRITE, Op
from ..include.rwonce import atomic_dec_and_test
from ..kernel.core import kfunc
from ..kernel.sched import current
from ..kernel.task_work import task_work_add

EBADF = -9


class file_operations:
    """include/linux/fs.h: struct file_operations, the two entries the model uses."""

    def __init__(self, name: str, release=None, unlocked_ioctl=None):
        self.name = name
        self.release = release                # async (inode, file) -> int
        self.unlocked_ioctl = unlocked_ioctl  # async (file, cmd, arg) -> int


class file:
    """include/linux/fs.h: struct file: f_count, f_op and private_data."""

    def __init__(self, name: str, f_op: file_operations, private_data):
        self.name = name
        self.cname = name
        self.f_op = f_op
        self.private_data = private_data
        self.f_count = 0
        self.released = False

    def __repr__(self):
        return f"<file {self.name} f_count={self.f_count}>"


class files_struct:
    """include/linux/fdtable.h: struct files_struct: the fd table and how many threads
    share it."""

    def __init__(self, name: str):
        self.name = name
        self.cname = f"{name}->files"
        self.count = 0                        # threads using it (CLONE_FILES)
        self.fdt: dict[int, file] = {}

    def fd_install(self, fd: int, f: file) -> None:
        """fs/file.c: fd_install at setup: the table takes the file's first reference."""
        self.fdt[fd] = f
        f.f_count += 1


# -- fdget / fdput ---------------------------------------------------------------------

@kfunc("fs/file.c")
async def fdget(fd: int):
    """fs/file.c: fdget -> __fget_light -> __fget_files_rcu: look ``fd`` up in current's
    table and take a reference on its file; None (the caller returns -EBADF) if the fd
    is not open."""
    files = current().files
    await Op((files, "fdt"), READ, f"fdget({fd})")
    f = files.fdt.get(fd)
    if f is None:
        return None
    f.f_count += 1                            # atomic_long_inc_not_zero: the table's ref
    return f


@kfunc("fs/file.c")
async def fdput(f) -> None:
    """include/linux/file.h: fdput -> fput (FDPUT_FPUT: fdget took a reference)."""
    await fput(f)


@kfunc("fs/file_table.c")
async def fput(f: file) -> None:
    """fs/file_table.c: fput: drop a reference; the last one queues ____fput as task
    work of the current (user) task, so ->release runs on its way back to userspace
    (TWA_RESUME) -- or, past its last task work in do_exit, from the delayed_fput work,
    which the model runs at once."""
    if not await atomic_dec_and_test(f, "f_count",
                                     f"atomic_long_dec_and_test(&{f.name}->f_count)", key=f):
        return
    ts = current()

    async def ____fput():
        await __fput(f)

    if ts.kthread or task_work_add(ts, ____fput):
        await __fput(f)


@kfunc("fs/file_table.c")
async def __fput(f: file) -> None:
    """fs/file_table.c: __fput: the file's last reference is gone: ->release."""
    f.released = True
    if f.f_op.release is not None:
        await f.f_op.release(None, f)


# -- close ---------------------------------------------------------------------------

@kfunc("fs/file.c")
async def file_close_fd(fd: int):
    """fs/file.c: file_close_fd: under files->file_lock, take the file out of the
    table (rcu_assign_pointer(fdt->fd[fd], NULL)); None if the fd was not open."""
    files = current().files
    await Op((files, "fdt"), WRITE, f"file_close_fd({fd})")
    return files.fdt.pop(fd, None)


@kfunc("fs/open.c")
async def sys_close(fd: int) -> int:
    """fs/open.c: SYSCALL_DEFINE1(close): file_close_fd, filp_flush (no ->flush here),
    then fput_close_sync: "we're returning to user space, don't bother with any delayed
    fput() cases" -- the last reference runs __fput right here, in close()."""
    f = await file_close_fd(fd)
    if f is None:
        return EBADF
    await fput_close_sync(f)
    return 0


@kfunc("fs/file_table.c")
async def fput_close_sync(f: file) -> None:
    """fs/file_table.c: fput_close_sync (v6.15; __fput_sync before): drop a reference;
    the last one runs __fput synchronously, without task work."""
    await Op(f, WRITE, f"file_ref_put_close(&{f.name}->f_ref)")
    f.f_count -= 1
    if f.f_count == 0:
        await __fput(f)


# -- a thread's exit ---------------------------------------------------------------------

@kfunc("fs/file.c")
async def exit_files(tsk) -> None:
    """fs/file.c: exit_files: under task_lock, tsk->files = NULL; then
    put_files_struct.  The files_struct goes only with its last thread."""
    files = tsk.files
    if files is None:
        return
    tsk.files = None
    await put_files_struct(files)


@kfunc("fs/file.c")
async def put_files_struct(files: files_struct) -> None:
    """fs/file.c: put_files_struct: atomic_dec_and_test(&files->count); the last user
    closes every fd (close_files)."""
    if await atomic_dec_and_test(files, "count",
                                 f"atomic_dec_and_test(&{files.cname}->count)"):
        await close_files(files)


@kfunc("fs/file.c")
async def close_files(files: files_struct) -> None:
    """fs/file.c: close_files: filp_close -> fput_close of every open fd, in fd order;
    fput_close defers ->release to task work as fput does."""
    for fd in sorted(files.fdt):
        f = files.fdt.pop(fd)
        await fput(f)
