"""The kernel primitives under both presets, each with a known outcome."""

from helpers import explore, kinds, named

from kmodel.engine import Limits
from kmodel.engine.strategies import Replay
from kmodel.linux.include import bitops
from kmodel.linux.include.rwonce import store
from kmodel.linux.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from kmodel.linux.kernel.locking.spinlock import (
    raw_spin_lock, raw_spin_unlock, raw_spinlock_t, rwlock_t, spin_lock, spin_unlock,
    spinlock_t, write_lock, write_unlock)
from kmodel.linux.kernel.rcu.srcu import (
    call_srcu, srcu_barrier, srcu_read_lock, srcu_read_unlock, srcu_struct, synchronize_srcu)
from kmodel.linux.include.kernel import non_block_end, non_block_start


def locks(p):
    p.lock = spinlock_t("&test->lock")
    p.raw = raw_spinlock_t("&test->raw_lock")
    p.mmu_lock = rwlock_t("&kvm->mmu_lock")


@named
async def reaper_spin_lock(p):
    non_block_start()
    await spin_lock(p.lock)
    await spin_unlock(p.lock)
    non_block_end()


@named
async def reaper_raw_spin_lock(p):
    non_block_start()
    await raw_spin_lock(p.raw)
    await raw_spin_unlock(p.raw)
    non_block_end()


@named
async def reaper_write_lock(p):
    non_block_start()
    await write_lock(p.mmu_lock)
    await write_unlock(p.mmu_lock)
    non_block_end()


def test_spin_lock_in_non_block_section_splats_only_on_rt():
    rt = explore("rt", {"oom_reaper": reaper_spin_lock}, locks)
    assert kinds(rt) == ["sleep-in-atomic"]
    r = rt.reports[0]
    assert r.task == "oom_reaper"
    assert r.trace[:3] == ["__might_resched", "rt_spin_lock", "reaper_spin_lock"]
    assert r.function == "reaper_spin_lock"
    first = r.text.splitlines()[0]
    assert first.startswith("BUG: sleeping function called from invalid context at "
                            "kernel/locking/spinlock_rt.c:")
    assert "non_block: 1" in r.text and "name: oom_reaper" in r.text
    assert explore("nonrt", {"oom_reaper": reaper_spin_lock}, locks).reports == []


def test_raw_spin_lock_in_non_block_section_is_clean_on_both():
    for preset in ("rt", "nonrt"):
        res = explore(preset, {"oom_reaper": reaper_raw_spin_lock}, locks)
        assert res.reports == [] and res.complete


def test_rwlock_write_lock_in_non_block_section_names_rt_write_lock():
    res = explore("rt", {"oom_reaper": reaper_write_lock}, locks)
    assert kinds(res) == ["sleep-in-atomic"]
    assert res.reports[0].trace[1] == "rt_write_lock"
    assert "spinlock_rt.c:241" in res.reports[0].text
    assert explore("nonrt", {"oom_reaper": reaper_write_lock}, locks).reports == []


def srcus(p):
    p.srcu = srcu_struct("srcu")
    p.other = srcu_struct("&kvm->srcu")


@named
async def sync_inside_same_reader(p):
    idx = await srcu_read_lock(p.srcu)
    await synchronize_srcu(p.srcu)
    await srcu_read_unlock(p.srcu, idx)


@named
async def sync_inside_other_reader(p):
    idx = await srcu_read_lock(p.other)
    await synchronize_srcu(p.srcu)
    await srcu_read_unlock(p.other, idx)


def test_synchronize_srcu_inside_own_read_section_is_recursive_and_deadlocks():
    for preset in ("rt", "nonrt"):
        res = explore(preset, {"qemu": sync_inside_same_reader}, srcus)
        assert kinds(res) == ["hung-task", "lockdep-recursive"]
        rec = next(r for r in res.reports if r.kind == "lockdep-recursive")
        assert "WARNING: possible recursive locking detected" in rec.text
        assert "lock(srcu);\n  lock(srcu);" in rec.text
        assert rec.function == "__synchronize_srcu"
        hung = next(r for r in res.reports if r.kind == "hung-task")
        assert hung.text.startswith("INFO: task qemu:")
        assert "__synchronize_srcu" in hung.trace


def test_synchronize_srcu_inside_another_srcu_is_clean():
    res = explore("rt", {"qemu": sync_inside_other_reader}, srcus)
    assert res.reports == [] and res.complete and res.executions == 1


def abba_setup(p):
    p.a = mutex("&a->lock")
    p.b = mutex("&b->lock")


@named
async def take_ab(p):
    await mutex_lock(p.a)
    await mutex_lock(p.b)
    await mutex_unlock(p.b)
    await mutex_unlock(p.a)


@named
async def take_ba(p):
    await mutex_lock(p.b)
    await mutex_lock(p.a)
    await mutex_unlock(p.a)
    await mutex_unlock(p.b)


def test_abba_lockdep_circular_and_real_deadlock():
    res = explore("nonrt", {"t1": take_ab, "t2": take_ba}, abba_setup)
    assert res.complete
    assert kinds(res) == ["hung-task", "lockdep-circular"]
    circ = next(r for r in res.reports if r.kind == "lockdep-circular")
    assert "possible circular locking dependency detected" in circ.text
    assert circ.title.endswith("&a->lock <-> &b->lock")
    # every execution in which both orders are recorded reports the cycle, even those
    # that do not deadlock: the serial one reports it at the second task's first lock
    hung = [r for r in res.reports if r.kind == "hung-task"]
    assert {r.task for r in hung} <= {"t1", "t2"}


def test_call_srcu_waits_for_earlier_readers_and_barrier_for_callbacks():
    def setup(p):
        p.srcu = srcu_struct("srcu")
        p.log = []

    async def callback(p):
        p.log.append(("callback", dict(p.srcu.readers).__len__()))

    @named
    async def reader(p):
        idx = await srcu_read_lock(p.srcu)
        p.log.append("reader-in")
        await call_srcu(p.srcu, callback, p, "callback")
        p.log.append("queued")
        await srcu_read_unlock(p.srcu, idx)
        p.log.append("reader-out")
        await srcu_barrier(p.srcu)
        p.log.append("barrier-done")

    from kmodel.engine.strategies import Dpor
    from helpers import Snippet
    orders = set()

    class Watch(Snippet):
        def at_end(self, ex):
            orders.add(tuple(x if isinstance(x, str) else x[0] for x in self.log))

    res = Dpor().explore(lambda: Watch("rt", {"qemu": reader}, setup), Limits())
    assert res.complete and res.reports == []
    # the callback always runs after the reader left and before the barrier returned
    assert orders == {("reader-in", "queued", "reader-out", "callback", "barrier-done")}


def flags(p):
    p.flags = set()


@named
async def set_unstable(p):
    await bitops.set_bit("MMF_UNSTABLE", p)


@named
async def set_oom_skip(p):
    await bitops.set_bit("MMF_OOM_SKIP", p)


@named
async def queue_once(p):
    p.queued = getattr(p, "queued", 0) + (not await bitops.test_and_set_bit("MMF_OOM_REAP_QUEUED", p))


@named
async def check_unstable(p):
    p.seen = await bitops.test_bit("MMF_UNSTABLE", p)


def test_bitops_on_different_bits_commute():
    res = explore("nonrt", {"a": set_unstable, "b": set_oom_skip}, flags)
    assert res.complete and res.executions == 1 and res.classes == 1


def test_set_bit_races_test_bit_of_the_same_bit_only():
    same = explore("nonrt", {"a": set_unstable, "b": check_unstable}, flags)
    assert same.complete and same.classes == 2
    other = explore("nonrt", {"a": set_oom_skip, "b": check_unstable}, flags)
    assert other.complete and other.classes == 1


def test_test_and_set_bit_orders_its_callers():
    res = explore("nonrt", {"a": queue_once, "b": queue_once}, flags)
    assert res.complete and res.classes == 2 and res.reports == []


def test_srcu_unlock_and_grace_period_start_commute_but_stay_ordered():
    """A reader's unlock and the start of a grace period commute (the grace period ends
    after the unlock either way): with a reader and a synchronize_srcu, the classes are
    the reader's section before the grace period starts or around it (one class), and
    the grace period starting first, where the two writes race either way (two) -- 3,
    not 4.  Where the reader had left first, the start is ordered after its unlock:
    its write happens-before the updater's, no race."""
    def setup(p):
        p.srcu = srcu_struct("srcu")
        p.obj = type("obj", (), {"cname": "obj", "field": 0})()

    @named
    async def reader(p):
        idx = await srcu_read_lock(p.srcu)
        await store(p.obj, "field", 1)
        await srcu_read_unlock(p.srcu, idx)

    @named
    async def updater(p):
        await synchronize_srcu(p.srcu)
        await store(p.obj, "field", 2)

    from helpers import Snippet
    from kmodel.engine.strategies import Dpor
    traces = []

    class Watch(Snippet):
        def at_end(self, ex):
            traces.append([label for _t, _f, label in ex.trace])

    res = Dpor().explore(lambda: Watch("nonrt", {"reader": reader, "updater": updater},
                                       setup), Limits())
    assert res.complete and res.executions == res.classes == 3
    first = traces[0]       # the reader's whole section first
    assert first.index("srcu_read_unlock(srcu)") < \
        first.index("synchronize_srcu(srcu): after reader #0 left")
    assert kinds(res) == ["data-race"]
    assert all(r.task in ("reader", "updater") for r in res.reports)
