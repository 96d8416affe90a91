"""include/linux/kernel.h: non_block_start()/non_block_end(), the section in which the
mmu-notifier core calls a non-blockable invalidation: __might_resched reports a sleep
inside it (non_block: 1)."""

from __future__ import annotations

from ..kernel.core import kernel
from ..kernel.panic import WARN_ON
from ..kernel.sched import current


def non_block_start() -> None:
    """include/linux/kernel.h: non_block_start: only with DEBUG_ATOMIC_SLEEP."""
    if kernel().config.DEBUG_ATOMIC_SLEEP:
        current().non_block_count += 1


def non_block_end() -> None:
    """include/linux/kernel.h: non_block_end: WARN_ON(current->non_block_count-- == 0)."""
    if kernel().config.DEBUG_ATOMIC_SLEEP:
        ts = current()
        WARN_ON(ts.non_block_count == 0, "current->non_block_count-- == 0")
        ts.non_block_count -= 1
