"""virt/kvm/pfncache.c: gfn_to_pfn caches, invalidated from range_start before the
SPTEs.  x86 only (HAVE_KVM_PFNCACHE); elsewhere an empty inline stub.

gpc_lock is a spinlock_t taken even when no cache exists, and each cache's lock is an
rwlock_t: on PREEMPT_RT both sleep, so this is the first sleeping lock a non-blockable
invalidation reaches on x86 once mn_invalidate_lock is raw.
"""

from __future__ import annotations

from ...kernel.core import kernel, kfunc
from ...kernel.locking.spinlock import read_lock_irq, read_unlock_irq, spin_lock, \
    spin_unlock, write_lock_irq, write_unlock_irq


@kfunc("virt/kvm/pfncache.c")
async def gfn_to_pfn_cache_invalidate_start(kvm, start: int, end: int) -> None:
    if kernel().arch != "x86":
        return
    await spin_lock(kvm.gpc_lock)
    for gpc in kvm.gpc_list:
        await read_lock_irq(gpc.lock)
        if gpc.valid and start <= gpc.uhva < end:
            await read_unlock_irq(gpc.lock)
            await write_lock_irq(gpc.lock)
            if gpc.valid and start <= gpc.uhva < end:
                gpc.valid = False
            await write_unlock_irq(gpc.lock)
            continue
        await read_unlock_irq(gpc.lock)
    await spin_unlock(kvm.gpc_lock)
