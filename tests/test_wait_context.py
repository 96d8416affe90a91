"""Lockdep's wait-context check (kernel/locking/lockdep.c: check_wait_context) with
PROVE_RAW_LOCK_NESTING, and the lockdep_map pseudo-locks of mm/mmu_notifier.c."""

from helpers import explore, kinds, named

from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor
from kmodel.linux.config import PRESETS
from kmodel.linux.kernel.locking.mutex import mutex, mutex_lock, mutex_unlock
from kmodel.linux.kernel.locking.spinlock import (
    raw_spin_lock, raw_spin_unlock, raw_spinlock_t, spin_lock, spin_unlock, spinlock_t)
from kmodel.scenarios.base import KernelProgram


def locks(p):
    p.lock = spinlock_t("&test->lock")
    p.raw = raw_spinlock_t("&test->raw_lock")
    p.mutex = mutex("&test->mutex")


@named
async def spin_under_raw(p):
    await raw_spin_lock(p.raw)
    await spin_lock(p.lock)
    await spin_unlock(p.lock)
    await raw_spin_unlock(p.raw)


@named
async def raw_under_spin(p):
    await spin_lock(p.lock)
    await raw_spin_lock(p.raw)
    await raw_spin_unlock(p.raw)
    await spin_unlock(p.lock)


@named
async def mutex_under_spin(p):
    await spin_lock(p.lock)
    await mutex_lock(p.mutex)
    await mutex_unlock(p.mutex)
    await spin_unlock(p.lock)


def test_spinlock_under_raw_spinlock_is_an_invalid_wait_context_on_non_rt():
    res = explore("nonrt", {"qemu": spin_under_raw}, locks)
    assert res.complete and kinds(res) == ["lockdep-wait-context"]
    r = res.reports[0]
    assert r.task == "qemu" and r.function == "spin_under_raw"
    lines = r.text.splitlines()
    assert lines[1:3] == ["=============================", "[ BUG: Invalid wait context ]"]
    assert "qemu/" in lines[5] and lines[5].endswith(" is trying to lock:")
    assert lines[6] == "(&test->lock){+.+.}-{3:3}, at: spin_under_raw"
    assert lines[7:9] == ["other info that might help us debug this:", "context-{5:5}"]
    assert lines[9].startswith("1 lock held by qemu/")
    assert lines[10] == " #0: (&test->raw_lock){+.+.}-{2:2}, at: spin_under_raw"
    assert "stack backtrace:" in lines


def test_without_raw_lock_nesting_the_two_spin_levels_are_one():
    cfg = PRESETS["nonrt"].set("PROVE_RAW_LOCK_NESTING", False)

    class P(KernelProgram):
        def build(self):
            locks(self)

        def tasks(self):
            return [("qemu", spin_under_raw, {})]

    res = Dpor().explore(lambda: P(cfg, "x86"), Limits())
    assert res.complete and res.reports == []


def test_raw_spinlock_under_spinlock_is_valid():
    for preset in ("rt", "nonrt"):
        res = explore(preset, {"qemu": raw_under_spin}, locks)
        assert res.complete and res.reports == [], preset


def test_mutex_under_spinlock_is_invalid_with_sleep_level_4():
    res = explore("nonrt", {"qemu": mutex_under_spin}, locks)
    assert "lockdep-wait-context" in kinds(res)
    r = next(r for r in res.reports if r.kind == "lockdep-wait-context")
    assert "(&test->mutex){+.+.}-{4:4}, at: mutex_under_spin" in r.text


# -- the mmu-notifier invalidate map and fs_reclaim ----------------------------------

def notifier_setup(p):
    from kmodel.linux.mm import mmu_notifier as mn
    from kmodel.linux.mm.mm_types import mm_struct

    async def start(sub, rng):                 # a subscriber that takes p.mutex
        await mutex_lock(p.mutex)
        await mutex_unlock(p.mutex)
        return 0

    p.mutex = mutex("&drv->lock")
    p.mm = mm_struct("mm")
    p.sub = mn.mmu_notifier(mn.mmu_notifier_ops("drv", invalidate_range_start=start))
    mn.register_at_setup(p.sub, p.mm)


@named
async def invalidate(p):
    from kmodel.linux.mm import mmu_notifier as mn
    rng = mn.mmu_notifier_range(p.mm, 0, 1, blockable=True)
    await mn.mmu_notifier_invalidate_range_start(rng)
    await mn.mmu_notifier_invalidate_range_end(rng)


@named
async def alloc_under_lock(p):
    from kmodel.linux.mm.slab import GFP_KERNEL, kmalloc
    await mutex_lock(p.mutex)
    await kmalloc("buf", GFP_KERNEL)
    await mutex_unlock(p.mutex)


@named
async def shrinker_takes_lock(p):
    from kmodel.linux.mm import page_alloc
    page_alloc.__fs_reclaim_acquire()      # as kswapd's balance_pgdat holds it
    await mutex_lock(p.mutex)
    await mutex_unlock(p.mutex)
    page_alloc.__fs_reclaim_release()


def test_gfp_kernel_allocation_under_a_lock_reclaim_takes_is_a_fs_reclaim_cycle():
    res = explore("nonrt", {"qemu": alloc_under_lock, "kswapd0": shrinker_takes_lock},
                  notifier_setup)
    assert res.complete
    circ = [r for r in res.reports if r.kind == "lockdep-circular"]
    assert circ and all(r.title.endswith("&drv->lock <-> fs_reclaim") for r in circ)


def nested_setup(p):
    from kmodel.linux.mm import mmu_notifier as mn
    from kmodel.linux.mm.mm_types import mm_struct

    async def start(sub, rng):                 # a subscriber that invalidates another mm
        inner = mn.mmu_notifier_range(p.other, 0, 1, blockable=True)
        await mn.mmu_notifier_invalidate_range_start(inner)
        await mn.mmu_notifier_invalidate_range_end(inner)
        return 0

    p.mm = mm_struct("mm")
    p.other = mm_struct("other_mm")
    p.sub = mn.mmu_notifier(mn.mmu_notifier_ops("nested", invalidate_range_start=start))
    mn.register_at_setup(p.sub, p.mm)


def test_nested_invalidation_is_recursive_locking_of_the_invalidate_map():
    res = explore("nonrt", {"qemu": invalidate}, nested_setup)
    assert res.complete and kinds(res) == ["lockdep-recursive"]
    r = res.reports[0]
    assert "lock(mmu_notifier_invalidate_range_start);\n  lock(mmu_notifier_invalidate_" \
           "range_start);" in r.text
    assert r.function == "mmu_notifier_invalidate_range_start"
    assert r.trace.count("mmu_notifier_invalidate_range_start") == 2


def test_invalidation_alone_records_no_cycle():
    res = explore("nonrt", {"kswapd0": invalidate}, notifier_setup)
    assert res.complete and res.reports == []
