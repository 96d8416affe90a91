"""virt/kvm/pfncache.c: gfn_to_pfn caches -- their invalidation from range_start (before
the SPTEs), and their use: check under the read side of gpc->lock, refresh when the
check fails.  x86 only (HAVE_KVM_PFNCACHE); elsewhere an empty inline stub.

Read against roypat/linux (a 2025 fork of torvalds/linux, guest_memfd work),
virt/kvm/pfncache.c, and arch/x86/kvm/x86.c (kvm_setup_guest_pvclock) as quoted in
2025 patch mail.

gpc_lock is a spinlock_t taken even when no cache exists, and each cache's lock is an
rwlock_t: on PREEMPT_RT both sleep, so this is the first sleeping lock a non-blockable
invalidation reaches on x86 once mn_invalidate_lock is raw.

The contract (pfncache.c's comments): the cache holds no page reference once refreshed;
what keeps a reader from using a page that has gone is that every invalidation of its
uhva clears ->valid under the write side of gpc->lock *before* the PTE is zapped and the
page freed, and a refresh that raced an invalidation retries (mmu_notifier_retry_cache:
mn_active_invalidate_count is raised before gpc->lock is taken and dropped only after
mmu_invalidate_seq moved).  A read through a valid cache whose page was freed is
therefore a use-after-free, reported where the read happens (KASAN's view).

Simplified: the memslot generation and the gpa->uhva lookup are not modelled (the cache
sits in memslot 0, which no activity changes); a cache is GPA-based and private memory
(guest_memfd) is not modelled; kmap/kunmap are no-ops (no highmem); the refresh loop,
unbounded in the kernel, gives up after GPC_REFRESH_RETRIES: the cache stays invalid,
the clock update is skipped and gpc.refresh_gave_up is set (no end-of-run property
looks at it yet, so a refresh that could never succeed is not reported).
"""

from __future__ import annotations

from ....engine import WRITE, Op
from ...include.rwonce import READ_ONCE, load
from ...kernel.core import kernel, kfunc
from ...kernel.locking.mutex import mutex_lock, mutex_unlock
from ...kernel.locking.spinlock import read_lock_irq, read_unlock_irq, spin_lock, \
    spin_unlock, write_lock_irq, write_unlock_irq
from ...kernel.panic import WARN_ON_ONCE
from ...kernel.sched import cond_resched

EINVAL = -22
EFAULT = -14
EAGAIN = -11                  # the model's "gave up retrying" (see the module docstring)
GPC_REFRESH_RETRIES = 2


@kfunc("virt/kvm/pfncache.c")
async def gfn_to_pfn_cache_invalidate_start(kvm, start: int, end: int) -> None:
    """pfncache.c: under kvm->gpc_lock, each cache whose uhva is in [start, end) is found
    valid under the read side of its lock, then cleared under the write side (checked
    again there: it may have changed in between)."""
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


@kfunc("virt/kvm/pfncache.c")
async def kvm_gpc_check(gpc, length: int) -> bool:
    """pfncache.c: kvm_gpc_check (gpc->lock held for read): active, the memslot generation
    unchanged (not modelled), the access within the page, and valid.  Its fields are
    only written under the write side, so it is no visible step of its own."""
    return gpc.active and gpc.valid


def mmu_notifier_retry_cache(kvm, mmu_seq: int, count: int, seq: int) -> bool:
    """pfncache.c: mmu_notifier_retry_cache: an invalidation is in flight
    (mn_active_invalidate_count, which is raised *before* the caches are invalidated,
    unlike mmu_invalidate_in_progress) or the sequence moved.  ``count`` and ``seq`` are
    the two reads, made by the caller as visible steps in the kernel's order."""
    if count:
        return True
    return seq != mmu_seq


@kfunc("virt/kvm/pfncache.c")
async def hva_to_pfn_retry(gpc) -> int:
    """pfncache.c: hva_to_pfn_retry (refresh_lock held, gpc->lock held for write): clear
    valid, then loop: snapshot mmu_invalidate_seq, drop gpc->lock, release the previous
    attempt's page, hva_to_pfn (GUP: sleeps, may fault), retake gpc->lock for write, and
    retry while mmu_notifier_retry_cache says an invalidation raced.  On success the cache
    is valid over the new page and the GUP reference is put: the page is now tracked only
    through the notifier."""
    from .kvm_mm import hva_to_pfn
    from ...mm.memory import put_page
    kvm = gpc.kvm
    gpc.valid = False
    new_pfn = None
    tries = 0
    while True:
        mmu_seq = await READ_ONCE(kvm, "mmu_invalidate_seq",
                                  "mmu_seq = gpc->kvm->mmu_invalidate_seq")
        await write_unlock_irq(gpc.lock)
        if new_pfn is not None:
            await put_page(new_pfn)                   # kvm_release_pfn_clean
            await cond_resched()
        page = await hva_to_pfn(kvm.mm, gpc.uhva, True)
        if page is None or isinstance(page, int):
            await write_lock_irq(gpc.lock)            # out_error
            return EFAULT
        new_pfn = page
        await write_lock_irq(gpc.lock)
        WARN_ON_ONCE(gpc.valid, "gpc->valid")
        # mmu_notifier_retry_cache reads the count plainly, outside mn_invalidate_lock
        # ("it does not matter that mn_active_invalidate_count is not protected by
        # gpc->lock"): with KCSAN that read races the callbacks' count++/count--
        count = await load(kvm, "mn_active_invalidate_count",
                           "if (kvm->mn_active_invalidate_count)")
        seq = None
        if not count:                                 # smp_rmb(), then the sequence
            seq = await READ_ONCE(kvm, "mmu_invalidate_seq",
                                  "kvm->mmu_invalidate_seq != mmu_seq")
        if not mmu_notifier_retry_cache(kvm, mmu_seq, count, seq):
            break
        tries += 1
        if tries > GPC_REFRESH_RETRIES:
            await write_unlock_irq(gpc.lock)
            await put_page(new_pfn)
            await write_lock_irq(gpc.lock)
            gpc.refresh_gave_up = True
            return EAGAIN
    gpc.valid = True
    gpc.pfn = new_pfn
    await put_page(new_pfn)                           # kvm_release_pfn_clean
    return 0


@kfunc("virt/kvm/pfncache.c")
async def __kvm_gpc_refresh(gpc, gpa: int) -> int:
    """pfncache.c: __kvm_gpc_refresh (refresh_lock held): under the write side of
    gpc->lock, an inactive cache fails; an invalid one is refreshed by hva_to_pfn_retry;
    a failed refresh leaves the cache invalid with no pfn."""
    await write_lock_irq(gpc.lock)
    if not gpc.active:
        await write_unlock_irq(gpc.lock)
        return EINVAL
    ret = 0
    if not gpc.valid:
        ret = await hva_to_pfn_retry(gpc)
        if ret:
            gpc.valid = False
            gpc.pfn = None
    await write_unlock_irq(gpc.lock)
    return ret


@kfunc("virt/kvm/pfncache.c")
async def kvm_gpc_refresh(gpc, length: int) -> int:
    """pfncache.c: kvm_gpc_refresh: guard(mutex)(&gpc->refresh_lock), then refresh at the
    cache's own gpa."""
    await mutex_lock(gpc.refresh_lock)
    ret = await __kvm_gpc_refresh(gpc, gpc.gpa)
    await mutex_unlock(gpc.refresh_lock)
    return ret


async def gpc_access(gpc, what: str) -> None:
    """An access through gpc->khva (gpc->lock held for read, kvm_gpc_check passed): the
    page must still be the cache's and alive -- the oracle for a cache left valid over a
    page that was freed."""
    from ...mm.memory import report_uaf
    page = gpc.pfn
    await Op(page, WRITE, f"{what} via gpc->khva (pfn {page.pfn:#x})")
    if page.freed:
        report_uaf(page, f"{gpc.cname} gfn_to_pfn_cache is valid over pfn {page.pfn:#x}, "
                         f"which was freed: {what} writes freed memory", "gpc access")
