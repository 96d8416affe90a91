"""Task states as in include/linux/sched.h (issue 12, item 1): a fatal signal wakes what
signal_wake_up wakes, a killable sleeper then gives up, and khungtaskd reports only
plain TASK_UNINTERRUPTIBLE sleepers, as kernel/hung_task.c's task_is_hung does."""

from __future__ import annotations

from helpers import explore, named

from kmodel.engine import Report

from kmodel.linux.kernel.sched import (TASK_INTERRUPTIBLE, TASK_KILLABLE, TASK_RUNNING,
                                       TASK_UNINTERRUPTIBLE, __set_current_state, current,
                                       schedule, set_current_state, signal_pending_state)
from kmodel.linux.kernel.signal import signal_wake_up


def threads(p):
    p.done = []


def sleeper(state):
    @named
    async def wait_forever(p):
        """A wait loop as the kernel writes one (wait_event_*): set the state, check the
        signals that state lets in, sleep; the condition never comes true."""
        ts = current()
        while True:
            await set_current_state(state)
            if signal_pending_state(state, ts):
                __set_current_state(TASK_RUNNING)
                p.done.append((ts.comm, "-EINTR"))
                return
            await schedule()
    return wait_forever


def by_kind(result, kind):
    return sorted((r.task, r.function) for r in result.reports if r.kind == kind)


def test_khungtaskd_reports_only_the_uninterruptible_sleeper():
    r = explore("nonrt", {"d-sleeper": sleeper(TASK_UNINTERRUPTIBLE),
                          "killable": sleeper(TASK_KILLABLE),
                          "interruptible": sleeper(TASK_INTERRUPTIBLE)}, threads)
    assert r.complete
    assert by_kind(r, "hung-task") == [("d-sleeper", "wait_forever")]
    assert [x.kind for x in r.reports] == ["hung-task"]


def killer(victim):
    @named
    async def send_sigkill(p):
        ex_task = [t for t in p.ex.tasks if t.name == victim][0]
        await signal_wake_up(ex_task.ctx, True)
    return send_sigkill


def must_give_up(p):
    """Each execution must end with the killable sleeper back from its wait (-EINTR)."""
    threads(p)

    def gave_up(prog, ex):
        if ("killable", "-EINTR") not in prog.done:
            ex.report(Report("invariant", "killable sleeper still asleep", "(end of run)",
                             "wait_forever", [], "the SIGKILL did not end the wait"))
    p.invariants = lambda: [gave_up]


def test_sigkill_wakes_a_killable_sleeper_which_returns_eintr():
    r = explore("nonrt", {"killable": sleeper(TASK_KILLABLE),
                          "oom": killer("killable")}, must_give_up)
    assert r.complete and not r.reports
    assert r.executions >= 2        # the signal before the sleep, and into the sleep


def test_sigkill_does_not_wake_an_uninterruptible_sleeper():
    r = explore("nonrt", {"d-sleeper": sleeper(TASK_UNINTERRUPTIBLE),
                          "oom": killer("d-sleeper")}, threads)
    assert r.complete
    assert by_kind(r, "hung-task") == [("d-sleeper", "wait_forever")]
    hung = r.reports[0]
    assert "state:D" in hung.text and "schedule() [TASK_UNINTERRUPTIBLE]" in hung.text


def test_mmap_read_lock_killable_gives_up_on_sigkill_behind_a_writer_that_never_leaves():
    from kmodel.linux.kernel.locking.rwsem import (down_read, down_read_killable,
                                                   down_write, rw_semaphore, up_read)

    def setup(p):
        threads(p)
        p.sem = rw_semaphore("&mm->mmap_lock")

    @named
    async def writer_forever(p):
        await down_write(p.sem)                  # and never up_write

    def reader(lock):
        @named
        async def gup_slow(p):
            r = await lock(p.sem)
            if not r:
                await up_read(p.sem)
            p.done.append(r)
        return gup_slow

    killable = explore("nonrt", {"holder": writer_forever,
                                 "vcpu": reader(down_read_killable),
                                 "oom": killer("vcpu")}, setup)
    assert killable.complete and killable.executions >= 2
    assert [r.kind for r in killable.reports if r.kind == "hung-task"] == []
    # the same wait uninterruptible (down_read): a SIGKILL cannot end it
    plain = explore("nonrt", {"holder": writer_forever, "vcpu": reader(down_read),
                              "oom": killer("vcpu")}, setup)
    assert by_kind(plain, "hung-task") == [("vcpu", "gup_slow")]
