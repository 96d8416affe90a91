"""Fair reader/writer locks: a waiting writer blocks new readers.

rw_semaphore without PREEMPT_RT (kernel/locking/rwsem.c), rwlock_t without PREEMPT_RT
(kernel/locking/qrwlock.c, interrupt-context readers excepted), and both with PREEMPT_RT
(kernel/locking/rwbase_rt.c).  The classic pattern -- a reader takes the lock again while
another task's writer waits -- deadlocks on each, and is reported as the kernel would.
"""

from helpers import explore, kinds, named

from kmodel.linux.kernel.locking.rwsem import (
    down_read, down_read_trylock, down_write, rw_semaphore, up_read, up_write)
from kmodel.linux.kernel.locking.spinlock import (
    read_lock, read_unlock, rwlock_t, write_lock, write_unlock)
from kmodel.linux.kernel.rcu.srcu import local_bh_disable, local_bh_enable


def sems(p):
    p.sem = rw_semaphore("&mm->mmap_lock")
    p.rw = rwlock_t("&kvm->mmu_lock")
    p.log = []


@named
async def reader_twice(p):
    await down_read(p.sem)
    await down_read(p.sem)
    p.log.append("reader-in-twice")
    await up_read(p.sem)
    await up_read(p.sem)


@named
async def writer(p):
    await down_write(p.sem)
    p.log.append("writer-in")
    await up_write(p.sem)


def test_rwsem_pending_writer_deadlocks_a_recursive_reader_on_both_presets():
    for preset in ("nonrt", "rt"):
        res = explore(preset, {"reader": reader_twice, "writer": writer}, sems)
        assert res.complete, preset
        # lockdep: down_read is a non-recursive read, so taking it twice is reported
        assert kinds(res) == ["hung-task", "lockdep-recursive"], (preset, kinds(res))
        hung = [r for r in res.reports if r.kind == "hung-task"]
        assert {r.task for r in hung} == {"reader", "writer"}, preset
        waiting = {r.task: r.text for r in hung}
        slow = "rwbase_write_lock" if preset == "rt" else "rwsem_down_write_slowpath"
        assert slow in waiting["writer"], preset
        assert "state:D" in waiting["reader"]


def test_rwsem_readers_share_when_no_writer_waits():
    @named
    async def reader(p):
        await down_read(p.sem)
        await up_read(p.sem)

    res = explore("nonrt", {"r1": reader_twice, "r2": reader}, sems)
    assert res.complete and kinds(res) == ["lockdep-recursive"]
    assert not any(r.kind == "hung-task" for r in res.reports)


def test_rwsem_trylock_fails_exactly_when_a_writer_waits():
    from helpers import Snippet

    from kmodel.engine import Limits
    from kmodel.engine.strategies import Dpor

    @named
    async def holder_then_try(p):
        await down_read(p.sem)
        ok = await down_read_trylock(p.sem)
        p.log.append((ok, bool(p.sem.waiters)))      # same step as the trylock
        if ok:
            await up_read(p.sem)
        await up_read(p.sem)

    seen = set()

    class Watch(Snippet):
        def at_end(self, ex):
            seen.update(x for x in self.log if isinstance(x, tuple))

    res = Dpor().explore(lambda: Watch("nonrt", {"reader": holder_then_try,
                                                  "writer": writer}, sems), Limits())
    assert res.complete
    assert seen == {(True, False), (False, True)}
    # a successful trylock of a lock the task already holds is recursive for lockdep
    assert kinds(res) == ["lockdep-recursive"]


@named
async def rw_reader_twice(p):
    await read_lock(p.rw)
    await read_lock(p.rw)
    await read_unlock(p.rw)
    await read_unlock(p.rw)


@named
async def rw_writer(p):
    await write_lock(p.rw)
    await write_unlock(p.rw)


def test_qrwlock_pending_writer_spins_a_recursive_reader_forever_on_non_rt():
    res = explore("nonrt", {"reader": rw_reader_twice, "writer": rw_writer}, sems)
    assert res.complete
    # a plain read_lock is a non-recursive read for lockdep with QUEUED_RWLOCKS, and both
    # CPUs spin: the soft-lockup watchdog
    assert kinds(res) == ["lockdep-recursive", "soft-lockup"]
    spin = {r.task for r in res.reports if r.kind == "soft-lockup"}
    assert spin == {"reader", "writer"}
    r = next(r for r in res.reports if r.kind == "soft-lockup" and r.task == "reader")
    assert "queued_read_lock_slowpath(&kvm->mmu_lock) [queued]" in r.text


@named
async def rw_reader_twice_bh(p):
    local_bh_disable()
    await rw_reader_twice(p)
    local_bh_enable()


def test_qrwlock_reader_in_interrupt_context_gets_past_a_waiting_writer():
    res = explore("nonrt", {"reader": rw_reader_twice_bh, "writer": rw_writer}, sems)
    # in_interrupt() (bottom halves off): lockdep sees recursive reads, and the reader
    # waits only for a writer that holds the lock
    assert res.complete and res.reports == []


def test_rt_rwlock_pending_writer_blocks_a_recursive_reader():
    res = explore("rt", {"reader": rw_reader_twice, "writer": rw_writer}, sems)
    assert res.complete
    # no QUEUED_RWLOCKS on PREEMPT_RT: lockdep sees recursive reads and says nothing;
    # both wait in TASK_RTLOCK_WAIT, which khungtaskd does not see: the model's deadlock
    assert kinds(res) == ["deadlock"]
    stuck = {r.task: r.text for r in res.reports}
    assert set(stuck) == {"reader", "writer"}
    assert "__rwbase_read_lock(&kvm->mmu_lock) [blocked on rtmutex]" in stuck["reader"]
    assert "rwbase_write_lock(&kvm->mmu_lock) [waiting]" in stuck["writer"]
