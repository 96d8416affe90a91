"""include/linux/mmu_notifier.h: the lockdep map that every invalidate_range_start
section holds (defined in mm/mmu_notifier.c under CONFIG_LOCKDEP).  Apart from
mm/mmu_notifier.py so that mm/page_alloc.py's fs_reclaim can touch it without importing
the notifier core."""

from __future__ import annotations

from ..kernel.locking.lockdep import lockdep_map

# the pseudo-lock around every invalidation
__mmu_notifier_invalidate_range_start_map = lockdep_map("mmu_notifier_invalidate_range_start")
