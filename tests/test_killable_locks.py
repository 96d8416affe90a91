"""Killable sleeping locks (issue 12, items 1-2 as the kernel has them): the waiters of
down_read_killable, down_write_killable (mmap_{read,write}_lock_killable) and
mutex_lock_killable sleep in TASK_KILLABLE; a SIGKILL ends the wait with -EINTR and the
waiter leaves the queue -- a writer leaving from the head lets the readers queued behind
it in (rwsem.c rwsem_del_wake_waiter) -- on the fair rwsem, on PREEMPT_RT's rwbase and on
the mutex.  The search explores the signal against the grant both ways: its outcome sets
equal those of the unreduced search (naive) on the small programs here."""

from __future__ import annotations

import pytest
from helpers import Snippet, explore, named

from kmodel.engine import Limits, Report
from kmodel.engine.strategies import Dpor, Naive
from kmodel.linux.kernel.locking.mutex import (mutex, mutex_lock, mutex_lock_killable,
                                               mutex_unlock)
from kmodel.linux.kernel.locking.rwsem import (down_read, down_read_killable, down_write,
                                               down_write_killable, rw_semaphore, up_read,
                                               up_write)
from kmodel.linux.kernel.signal import signal_wake_up

EINTR = -4


def setup(p, held=None):
    """``held``: the lock is held when the run starts, and never released: "read" by a
    reader, "write" by a writer (on PREEMPT_RT it holds rwbase's rtmutex too), "mutex"."""
    p.sem = rw_semaphore("&mm->mmap_lock")
    p.mx = mutex("&vcpu->mutex")
    p.done = []
    if held == "read":
        p.sem.readers = 1
    elif held == "write":
        p.sem.owner = p.sem.rtmutex_owner = "holder"
    elif held == "mutex":
        p.mx.owner = "holder"


def held(how):
    return lambda p: setup(p, how)


def killer(victim):
    @named
    async def send_sigkill(p):
        t = next(t for t in p.ex.tasks if t.name == victim)
        await signal_wake_up(t.ctx, True)
    return send_sigkill


def locker(name, lock, unlock, obj="sem"):
    @named
    async def take(p):
        r = await lock(getattr(p, obj))
        if not r:
            await unlock(getattr(p, obj))
        p.done.append((name, r))
    return take


def hung(res):
    return sorted((r.task, r.function) for r in res.reports if r.kind == "hung-task")


def every_run_ends_with(expected, how=None):
    """An end-of-run check: ``p.done`` is exactly ``expected`` (sorted)."""
    def setup_and_check(p):
        setup(p, how)

        def check(prog, ex):
            if sorted(prog.done) != sorted(expected):
                ex.report(Report("invariant", f"ended with {sorted(prog.done)}",
                                 "(end of run)", "check", [], ""))
        p.invariants = lambda: [check]
    return setup_and_check


# -- rw_semaphore, non-RT (kernel/locking/rwsem.c) --------------------------------------

def test_down_write_killable_behind_a_reader_that_never_leaves_returns_eintr():
    # munmap's mmap_write_lock_killable: the SIGKILL ends the wait, nobody hangs
    res = explore("nonrt", {"munmap": locker("munmap", down_write_killable, up_write),
                            "oom": killer("munmap")},
                  every_run_ends_with([("munmap", EINTR)], "read"))
    assert res.complete and res.reports == []
    assert res.executions == 2      # the SIGKILL before the signal check, or into the sleep
    # the same wait uninterruptible (down_write): the SIGKILL cannot end it
    plain = explore("nonrt", {"munmap": locker("munmap", down_write, up_write),
                              "oom": killer("munmap")}, held("read"))
    assert hung(plain) == [("munmap", "take")]


def test_a_writer_killed_at_the_head_of_the_queue_lets_the_readers_behind_it_in():
    # reader2 queued behind the waiting writer (the fair rwsem); the writer's out_nolock
    # (rwsem_del_wake_waiter -> rwsem_mark_wake) grants it the read lock
    res = explore("nonrt", {"munmap": locker("munmap", down_write_killable, up_write),
                            "reader2": locker("reader2", down_read, up_read),
                            "oom": killer("munmap")},
                  every_run_ends_with([("munmap", EINTR), ("reader2", None)], "read"))
    assert res.complete and res.reports == []
    # with an uninterruptible writer, the writer and the reader behind it hang
    plain = explore("nonrt", {"munmap": locker("munmap", down_write, up_write),
                              "reader2": locker("reader2", down_read, up_read),
                              "oom": killer("munmap")}, held("read"))
    assert hung(plain) == [("munmap", "take"), ("reader2", "take")]


def test_a_reader_queued_behind_a_waiting_writer_gives_up_on_sigkill():
    # rwsem_down_read_slowpath in TASK_KILLABLE: the queued reader returns -EINTR and
    # leaves the queue; only the uninterruptible writer hangs
    tasks = {"writer": locker("writer", down_write, up_write),
             "gup": locker("gup", down_read_killable, up_read),
             "oom": killer("gup")}
    res = explore("nonrt", tasks, held("read"))
    assert res.complete
    assert hung(res) == [("writer", "take")]
    ends = set()

    class Watch(Snippet):
        def at_end(self, ex):
            ends.add((tuple(self.done), len(self.sem.waiters)))

    Dpor().explore(lambda: Watch("nonrt", tasks, held("read")), Limits())
    # the reader got in before the writer queued (it keeps the lock), or it queued
    # behind the writer and the SIGKILL took it out: the writer alone is left queued
    assert ends == {((("gup", 0),), 1), ((("gup", EINTR),), 1)}


def test_down_read_killable_returns_eintr_or_the_lock_as_the_release_and_the_signal_fall():
    ends = {}

    class Watch(Snippet):
        def at_end(self, ex):
            ends.setdefault(self.strategy, set()).add(tuple(self.done))

    tasks = {"holder": locker("holder", down_write, up_write),
             "gup": locker("gup", down_read_killable, up_read),
             "oom": killer("gup")}
    for strategy in (Dpor, Naive):
        def program(strategy=strategy):
            w = Watch("nonrt", tasks, setup)
            w.strategy = strategy.__name__
            return w
        res = strategy().explore(program, Limits())
        assert res.complete and res.reports == []
    # the search finds the SIGKILL that ends the wait (which it missed when the wait
    # was one op on the lock), and finds no more than the unreduced search
    assert {d for d in ends["Dpor"]} == {d for d in ends["Naive"]}
    assert {dict(d)["gup"] for d in ends["Dpor"]} == {0, EINTR}


# -- PREEMPT_RT: rwbase_rt ----------------------------------------------------------------

def test_rt_killable_reader_blocked_on_the_writers_rtmutex_returns_eintr():
    res = explore("rt", {"gup": locker("gup", down_read_killable, up_read),
                         "oom": killer("gup")},
                  every_run_ends_with([("gup", EINTR)], "write"))
    assert res.complete and res.reports == []
    assert res.executions == 2      # the SIGKILL before the signal check, or into the sleep


@pytest.mark.parametrize("how", ["read", "write"])
def test_rt_killable_writer_gives_the_lock_back_and_readers_behind_it_go(how):
    # behind a reader: the writer holds the rtmutex and waits for the reader to leave;
    # killed, it gives the rtmutex back (__rwbase_write_unlock) and a reader blocked on
    # the rtmutex gets in.  Behind a writer: it leaves the rtmutex's wait list.
    reader2 = [("reader2", None)] if how == "read" else []
    tasks = {"munmap": locker("munmap", down_write_killable, up_write),
             "oom": killer("munmap")}
    if reader2:
        tasks["reader2"] = locker("reader2", down_read, up_read)
    res = explore("rt", tasks, every_run_ends_with([("munmap", EINTR)] + reader2, how))
    assert res.complete and res.reports == []


# -- mutex (kernel/locking/mutex.c) -------------------------------------------------------

def test_mutex_lock_killable_returns_eintr_and_the_next_waiter_is_not_lost():
    # two killable waiters; the first is killed; the holder's unlock must still reach
    # the second (a woken waiter takes a free mutex before it looks at signals)
    @named
    async def holder(p):
        await mutex_lock(p.mx)
        await mutex_unlock(p.mx)

    ends = set()

    class Watch(Snippet):
        def at_end(self, ex):
            ends.add(tuple(sorted(self.done)))

    res = Dpor().explore(lambda: Watch("nonrt", {
        "holder": holder, "a": locker("a", mutex_lock_killable, mutex_unlock, "mx"),
        "b": locker("b", mutex_lock_killable, mutex_unlock, "mx"), "oom": killer("a")},
        setup), Limits())
    assert res.complete and res.reports == []
    # b always gets the mutex (a killable sleeper never woken would end the run quietly,
    # without b in the list); a gets it or gives up
    assert ends == {(("a", 0), ("b", 0)), (("a", EINTR), ("b", 0))}
    res = explore("nonrt", {"a": locker("a", mutex_lock_killable, mutex_unlock, "mx"),
                            "oom": killer("a")},
                  every_run_ends_with([("a", EINTR)], "mutex"))
    assert res.complete and res.reports == []
    plain = explore("nonrt", {"a": locker("a", mutex_lock, mutex_unlock, "mx"),
                              "oom": killer("a")}, held("mutex"))
    assert hung(plain) == [("a", "take")]
