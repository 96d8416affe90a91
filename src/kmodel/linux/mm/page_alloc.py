"""mm/page_alloc.c's fs_reclaim annotation (CONFIG_LOCKDEP) and include/linux/sched/mm.h's
might_alloc(): what an allocation that may enter direct reclaim tells lockdep and
might_sleep before it allocates."""

from __future__ import annotations

from ..include.mmu_notifier import __mmu_notifier_invalidate_range_start_map
from ..kernel.locking.lockdep import lock_map_acquire, lock_map_release, lockdep_map
from ..kernel.sched import might_sleep

# mm/page_alloc.c (CONFIG_LOCKDEP): the pseudo-lock for "this may recurse into reclaim"
__fs_reclaim_map = lockdep_map("fs_reclaim")


def __fs_reclaim_acquire() -> None:
    """mm/page_alloc.c: __fs_reclaim_acquire: reclaim itself runs holding fs_reclaim
    (kswapd's balance_pgdat, direct reclaim's __perform_reclaim)."""
    lock_map_acquire(__fs_reclaim_map)


def __fs_reclaim_release() -> None:
    lock_map_release(__fs_reclaim_map)


def fs_reclaim_acquire(gfp: str) -> None:
    """mm/page_alloc.c: fs_reclaim_acquire: an allocation that may enter direct reclaim
    (__need_reclaim: GFP_KERNEL here, never GFP_ATOMIC) takes fs_reclaim, and touches the
    mmu-notifier invalidate map too, since reclaim invalidates secondary MMUs."""
    if gfp != "GFP_KERNEL":
        return
    mn_map = __mmu_notifier_invalidate_range_start_map
    __fs_reclaim_acquire()
    lock_map_acquire(mn_map)
    lock_map_release(mn_map)


def fs_reclaim_release(gfp: str) -> None:
    if gfp == "GFP_KERNEL":
        __fs_reclaim_release()


def might_alloc(gfp: str) -> None:
    """include/linux/sched/mm.h: might_alloc: fs_reclaim_acquire()+release(), then
    might_sleep_if(gfpflags_allow_blocking(gfp))."""
    fs_reclaim_acquire(gfp)
    fs_reclaim_release(gfp)
    if gfp == "GFP_KERNEL":
        might_sleep("include/linux/sched/mm.h", 318)
