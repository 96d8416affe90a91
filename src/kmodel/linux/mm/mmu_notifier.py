"""mm/mmu_notifier.c and include/linux/mmu_notifier.h: the classic (hlist) subscribers.

Read against damonitor/linux (a 2025 mm development fork of torvalds/linux),
mm/mmu_notifier.c.

One global SRCU domain (``srcu``) protects every mm's subscription list; each walk of the
list (start, end, release) is its own read section, so a grace period does not wait for
an outstanding start..end window.  Non-blockable starts wrap each callback in
non_block_start()/non_block_end(); a failing non-blockable start undoes the others with
their range_end (the "undo" loop).

The list is ``include/linux/list.h``'s hlist (``linux/include/list.py``): a walk
(hlist_for_each_entry_srcu) loads one ``->next`` pointer per step, so it sees each link
as it is when it reads it -- a subscriber added or removed mid-walk is seen or missed
exactly as in the kernel -- and the changes (hlist_add_head_rcu, hlist_del_init_rcu,
hlist_unhashed) rewrite the same pointers the kernel's do.

Lockdep sees every start and end as an acquisition of the pseudo-lock
__mmu_notifier_invalidate_range_start_map, and registration primes fs_reclaim -> that map,
so a lock held around a GFP_KERNEL allocation and taken in a callback is a cycle.

Simplified: interval-tree subscribers (mmu_interval_notifier) are not modelled; KVM does
not use them.
"""

from __future__ import annotations

from ..include.list import hlist_add_head_rcu_at_setup, hlist_empty, hlist_entry, \
    hlist_head, hlist_node, hlist_unhashed
from ..include.rculist import hlist_del_init_rcu, hlist_for_each_entry_srcu
from ..include.rwonce import load
from ..kernel.core import kernel, kfunc
from ..include.sched_mm import mmdrop
from ..kernel.locking.lockdep import lock_map_acquire, lock_map_release
from ..kernel.locking.spinlock import spin_lock, spin_unlock, spinlock_t
from ..kernel.panic import BUG_ON, WARN_ON
from ..kernel.rcu.srcu import srcu_read_lock, srcu_read_lock_held, srcu_read_unlock, \
    srcu_struct, synchronize_srcu
from ..include.kernel import non_block_end, non_block_start
from ..include.mmu_notifier import __mmu_notifier_invalidate_range_start_map
from ..kernel.sched import might_sleep

EAGAIN = 11


def srcu() -> srcu_struct:
    """DEFINE_STATIC_SRCU(srcu) in mm/mmu_notifier.c: one domain for every mm."""
    k = kernel()
    if k.mmu_notifier_srcu is None:
        k.mmu_notifier_srcu = srcu_struct("srcu")
    return k.mmu_notifier_srcu


class mmu_notifier_ops:
    """The callbacks a subscriber provides (None where it provides none)."""

    def __init__(self, name: str, **callbacks):
        self.name = name
        self.release = None
        self.invalidate_range_start = None
        self.invalidate_range_end = None
        self.alloc_notifier = None
        for k, v in callbacks.items():
            setattr(self, k, v)


class mmu_notifier:
    """``owner`` is the struct that embeds it (container_of: struct kvm for KVM); the
    ``hlist`` node is memory inside that struct, so freeing it poisons the node."""

    def __init__(self, ops: mmu_notifier_ops, owner=None, cname: str | None = None):
        self.ops = ops
        self.mm = None
        self.users = 0
        self.owner = owner
        self.cname = cname or ops.name
        self.hlist = hlist_node(self, f"{self.cname}.hlist", parent=owner)


class mmu_notifier_subscriptions:
    def __init__(self, mm):
        self.cname = f"{mm.cname}->notifier_subscriptions"
        self.list = hlist_head(f"{self.cname}->list")
        self.lock = spinlock_t(f"&{mm.cname}->notifier_subscriptions->lock")


class mmu_notifier_range:
    def __init__(self, mm, start: int, end: int, blockable: bool, event: str = "UNMAP"):
        self.mm = mm
        self.start = start
        self.end = end
        self.blockable = blockable
        self.event = event
        # for the per-subscriber properties (scenarios/properties.py): which subscribers
        # this invalidation reached, start (with its return) and end; done once the
        # issuer is through with it (its range_end returned, or its start failed)
        self.seen_start: list = []
        self.seen_end: list = []
        self.done = False


def _issued(rng: mmu_notifier_range) -> None:
    """Bookkeeping for the properties: every invalidation issued on an mm with
    notifiers, in order."""
    rng.mm.invalidations = getattr(rng.mm, "invalidations", [])
    rng.mm.invalidations.append(rng)


def mmu_notifier_range_blockable(rng: mmu_notifier_range) -> bool:
    return rng.blockable


def mm_has_notifiers(mm) -> bool:
    return mm.notifier_subscriptions is not None and kernel().config.MMU_NOTIFIER


def register_at_setup(sub: mmu_notifier, mm) -> None:
    """mmu_notifier_register() as done before the run starts (KVM_CREATE_VM): mmgrab,
    users = 1, hlist_add_head_rcu.  Not explored: it precedes every scenario.  With
    lockdep, __mmu_notifier_register first takes fs_reclaim and the invalidate map inside
    it, recording fs_reclaim -> mmu_notifier_invalidate_range_start."""
    kernel().lockdep.record_dependency("fs_reclaim",
                                       __mmu_notifier_invalidate_range_start_map.name,
                                       "__mmu_notifier_register -> __mmu_notifier_register")
    if mm.notifier_subscriptions is None:
        mm.notifier_subscriptions = mmu_notifier_subscriptions(mm)
    mm.mm_count += 1
    sub.mm = mm
    sub.users = 1
    sub.at_setup = True               # for the properties: registered before the run
    hlist_add_head_rcu_at_setup(sub.hlist, mm.notifier_subscriptions.list)


def srcu_held() -> bool:
    """srcu_read_lock_held(&srcu), the walkers' lockdep condition."""
    return srcu_read_lock_held(srcu())


# -- invalidation ----------------------------------------------------------------------

@kfunc("include/linux/mmu_notifier.h")
async def mmu_notifier_invalidate_range_start(rng: mmu_notifier_range) -> None:
    """mmu_notifier.h: the blockable form: might_sleep(), then the walk; its return value
    is ignored; lockdep sees the invalidate map held around it."""
    might_sleep("include/linux/mmu_notifier.h", 459)
    lock_map_acquire(__mmu_notifier_invalidate_range_start_map)
    if mm_has_notifiers(rng.mm):
        rng.blockable = True
        _issued(rng)
        await __mmu_notifier_invalidate_range_start(rng)
    lock_map_release(__mmu_notifier_invalidate_range_start_map)


@kfunc("include/linux/mmu_notifier.h")
async def mmu_notifier_invalidate_range_start_nonblock(rng: mmu_notifier_range) -> int:
    """mmu_notifier.h: "mainly intended for OOM": no might_sleep, BLOCKABLE cleared; on a
    non-zero return the caller must not touch the PTEs and must not call range_end."""
    ret = 0
    lock_map_acquire(__mmu_notifier_invalidate_range_start_map)
    if mm_has_notifiers(rng.mm):
        rng.blockable = False
        _issued(rng)
        ret = await __mmu_notifier_invalidate_range_start(rng)
        if ret:
            rng.done = True           # no range_end follows a failed start
    lock_map_release(__mmu_notifier_invalidate_range_start_map)
    return ret


@kfunc("include/linux/mmu_notifier.h")
async def mmu_notifier_invalidate_range_end(rng: mmu_notifier_range) -> None:
    if mmu_notifier_range_blockable(rng):
        might_sleep("include/linux/mmu_notifier.h", 480)
    if mm_has_notifiers(rng.mm):
        await __mmu_notifier_invalidate_range_end(rng)
        rng.done = True


@kfunc("mm/mmu_notifier.c")
async def __mmu_notifier_invalidate_range_start(rng: mmu_notifier_range) -> int:
    subs = rng.mm.notifier_subscriptions
    if not await hlist_empty(subs.list):
        return await mn_hlist_invalidate_range_start(subs, rng)
    return 0


@kfunc("mm/mmu_notifier.c")
async def mn_hlist_invalidate_range_start(subs, rng: mmu_notifier_range) -> int:
    ret = 0
    idx = await srcu_read_lock(srcu())
    async for sub in hlist_for_each_entry_srcu(subs.list, srcu_held(),
                                               ("mm/mmu_notifier.c", 469)):
        if sub.ops.invalidate_range_start is None:
            continue
        if not mmu_notifier_range_blockable(rng):
            non_block_start()
        _ret = await sub.ops.invalidate_range_start(sub, rng)
        if not mmu_notifier_range_blockable(rng):
            non_block_end()
        rng.seen_start.append((sub, _ret))
        if _ret:
            WARN_ON(_ret != -EAGAIN or mmu_notifier_range_blockable(rng),
                    "_ret != -EAGAIN || mmu_notifier_range_blockable(range)")
            WARN_ON(sub.ops.invalidate_range_end is not None,
                    "ops->invalidate_range_end")
            ret = _ret
    if ret:
        # Undo: every subscriber whose start succeeded gets its end (not in non_block).
        async for sub in hlist_for_each_entry_srcu(subs.list, srcu_held(),
                                                   ("mm/mmu_notifier.c", 500)):
            if sub.ops.invalidate_range_end is None:
                continue
            await sub.ops.invalidate_range_end(sub, rng)
            rng.seen_end.append(sub)
    await srcu_read_unlock(srcu(), idx)
    return ret


@kfunc("mm/mmu_notifier.c")
async def __mmu_notifier_invalidate_range_end(rng: mmu_notifier_range) -> None:
    subs = rng.mm.notifier_subscriptions
    lock_map_acquire(__mmu_notifier_invalidate_range_start_map)
    if not await hlist_empty(subs.list):
        await mn_hlist_invalidate_end(subs, rng)
    lock_map_release(__mmu_notifier_invalidate_range_start_map)


@kfunc("mm/mmu_notifier.c")
async def mn_hlist_invalidate_end(subs, rng: mmu_notifier_range) -> None:
    idx = await srcu_read_lock(srcu())
    async for sub in hlist_for_each_entry_srcu(subs.list, srcu_held(),
                                               ("mm/mmu_notifier.c", 536)):
        if sub.ops.invalidate_range_end is None:
            continue
        if not mmu_notifier_range_blockable(rng):
            non_block_start()
        await sub.ops.invalidate_range_end(sub, rng)
        if not mmu_notifier_range_blockable(rng):
            non_block_end()
        rng.seen_end.append(sub)
    await srcu_read_unlock(srcu(), idx)


# -- release and unregister ------------------------------------------------------------

@kfunc("include/linux/mmu_notifier.h")
async def mmu_notifier_release(mm) -> None:
    if mm_has_notifiers(mm):
        await __mmu_notifier_release(mm)


@kfunc("mm/mmu_notifier.c")
async def __mmu_notifier_release(mm) -> None:
    subs = mm.notifier_subscriptions
    if not await hlist_empty(subs.list):
        await mn_hlist_release(subs, mm)


@kfunc("mm/mmu_notifier.c")
async def mn_hlist_release(subs, mm) -> None:
    """mmu_notifier.c: mn_hlist_release: every ->release under SRCU, then empty the list,
    then synchronize_srcu() so that exit_mmap frees no page while a ->release (even one
    from a concurrent unregister) still runs."""
    idx = await srcu_read_lock(srcu())
    async for sub in hlist_for_each_entry_srcu(subs.list, srcu_held(),
                                               ("mm/mmu_notifier.c", 330)):
        sub.unregistering = True      # for the properties: the mm is going
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await spin_lock(subs.lock)
    while not await hlist_empty(subs.list):
        sub = hlist_entry(await load(subs.list, "first",
                                     f"hlist_entry({subs.list.cname}.first)"))
        await hlist_del_init_rcu(sub.hlist)
    await spin_unlock(subs.lock)
    await srcu_read_unlock(srcu(), idx)
    await synchronize_srcu(srcu())


@kfunc("mm/mmu_notifier.c")
async def mmu_notifier_unregister(sub: mmu_notifier, mm) -> None:
    """mmu_notifier.c: mmu_notifier_unregister: ->release under SRCU if still hashed,
    unhash, then always synchronize_srcu() and mmdrop()."""
    BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
    sub.unregistering = True          # for the properties: registered until here
    if not await hlist_unhashed(sub.hlist):
        idx = await srcu_read_lock(srcu())
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
        await srcu_read_unlock(srcu(), idx)
        subs = mm.notifier_subscriptions
        await spin_lock(subs.lock)
        await hlist_del_init_rcu(sub.hlist)
        await spin_unlock(subs.lock)
    await synchronize_srcu(srcu())
    BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
    mmdrop(mm)
