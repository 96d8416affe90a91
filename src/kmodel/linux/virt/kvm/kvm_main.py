"""virt/kvm/kvm_main.c (and virt/kvm/kvm_mm.h): KVM's MMU-notifier callbacks, the
memslot update that waits for them, and VM destruction.

The contract the callbacks keep: mn_active_invalidate_count is raised before the range
is looked up in the memslots and dropped after, so that a memslot swap waits until every
start has its end, and start and end see the same memslots -- that is what keeps
mmu_invalidate_in_progress balanced (Sean Christopherson, 2026-02-11: "a deliberately
unfair rwsem").
"""

from __future__ import annotations

from ....engine import READ, WRITE, Op
from ...fs.file import file_operations
from ...include.rwonce import atomic_dec_and_test, load, store
from ...include.sched_mm import mmdrop
from ...kernel.core import call_trace, kernel, kfunc
from ...kernel.locking.mutex import mutex_lock, mutex_lock_killable, mutex_unlock
from ...kernel.locking.spinlock import spin_lock, spin_unlock, write_lock, write_unlock
from ...kernel.panic import WARN_ON, WARN_ON_ONCE
from ...kernel.rcu.srcu import srcu_read_lock, srcu_read_lock_held, srcu_read_unlock, \
    synchronize_srcu_expedited
from ...kernel.rcuwait import finish_rcuwait, prepare_to_rcuwait, rcuwait_active, \
    rcuwait_wake_up
from ...kernel.sched import TASK_UNINTERRUPTIBLE, current, schedule, set_current_state
from ...mm import mmu_notifier as mn
from ...mm.kasan import kasan_check
from ...mm.slab import kfree
from . import pfncache
from .kvm_mm import hva_to_pfn, hva_to_pfn_slow  # noqa: F401  (kvm_main.c's)
from .kvm_host import INVALID_GPA, KVM_MEMSLOT_INVALID, kvm_memslots


def arch():
    """The secondary MMU of the architecture being modelled (--arch)."""
    if kernel().arch == "arm64":
        from ...arch.arm64.kvm import mmu
    else:
        from ...arch.x86.kvm import mmu
    return mmu


def mmu_notifier_to_kvm(sub):
    return sub.owner


async def KVM_BUG_ON(cond, cond_text: str, kvm) -> bool:
    """include/linux/kvm_host.h: KVM_BUG_ON: WARN_ON_ONCE and mark the VM bugged."""
    if WARN_ON_ONCE(cond, cond_text):
        kvm.vm_bugged = True
    return bool(cond)


# -- kvm_mm.h -------------------------------------------------------------------------

@kfunc("virt/kvm/kvm_mm.h", inline=True)
async def KVM_MMU_LOCK(kvm) -> None:
    """kvm_mm.h: write_lock(&kvm->mmu_lock) (KVM_HAVE_MMU_RWLOCK)."""
    await write_lock(kvm.mmu_lock)


@kfunc("virt/kvm/kvm_mm.h", inline=True)
async def KVM_MMU_UNLOCK(kvm) -> None:
    await write_unlock(kvm.mmu_lock)


# -- invalidation bookkeeping, all under the write side of mmu_lock -----------------------

class kvm_mmu_notifier_range:
    def __init__(self, start, end, handler, on_lock, flush_on_ret, may_block):
        self.start = start
        self.end = end
        self.handler = handler
        self.on_lock = on_lock
        self.flush_on_ret = flush_on_ret
        self.may_block = may_block


class kvm_gfn_range:
    def __init__(self, slot, start, end, may_block):
        self.slot = slot
        self.start = start
        self.end = end
        self.may_block = may_block


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_invalidate_begin(kvm) -> None:
    """kvm_main.c: kvm_mmu_invalidate_begin: in_progress++; the first one resets the
    range.  Retry checks in the fault path hold mmu_lock, so it need not be atomic."""
    kvm.mmu_invalidate_in_progress += 1
    if kvm.mmu_invalidate_in_progress == 1:
        kvm.mmu_invalidate_range_start = INVALID_GPA
        kvm.mmu_invalidate_range_end = INVALID_GPA


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_invalidate_range_add(kvm, start: int, end: int) -> None:
    WARN_ON_ONCE(not kvm.mmu_invalidate_in_progress, "!kvm->mmu_invalidate_in_progress")
    if kvm.mmu_invalidate_range_start == INVALID_GPA:
        kvm.mmu_invalidate_range_start = start
        kvm.mmu_invalidate_range_end = end
    else:
        kvm.mmu_invalidate_range_start = min(kvm.mmu_invalidate_range_start, start)
        kvm.mmu_invalidate_range_end = max(kvm.mmu_invalidate_range_end, end)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_unmap_gfn_range(kvm, rng: kvm_gfn_range) -> bool:
    await kvm_mmu_invalidate_range_add(kvm, rng.start, rng.end)
    return await arch().kvm_unmap_gfn_range(kvm, rng)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_null_fn(kvm, rng) -> bool:
    return False


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_invalidate_end(kvm) -> None:
    """kvm_main.c: kvm_mmu_invalidate_end: seq++ then in_progress--, so that a fault
    that saw the old in_progress also sees the new seq."""
    await Op((kvm, "mmu_invalidate_seq"), WRITE, "kvm->mmu_invalidate_seq++")
    kvm.mmu_invalidate_seq += 1
    kvm.mmu_invalidate_in_progress -= 1
    await KVM_BUG_ON(kvm.mmu_invalidate_in_progress < 0,
                     "kvm->mmu_invalidate_in_progress < 0", kvm)
    WARN_ON_ONCE(kvm.mmu_invalidate_range_start == INVALID_GPA,
                 "kvm->mmu_invalidate_range_start == INVALID_GPA")


@kfunc("virt/kvm/kvm_main.c", inline=True)
async def kvm_handle_hva_range(kvm, rng: kvm_mmu_notifier_range) -> bool:
    """kvm_main.c: kvm_handle_hva_range (__always_inline): walk the memslots under
    kvm->srcu; only on the first memslot hit take mmu_lock for write and call on_lock.
    Returns found_memslot.  If no memslot intersects, mmu_lock is never taken."""
    found_memslot = False
    ret = False
    idx = await srcu_read_lock(kvm.srcu)
    slots = await rcu_dereference_memslots(kvm)
    for slot in slots.overlapping(rng.start, rng.end):
        lo, hi = slot.hva_range()
        gfn_range = kvm_gfn_range(slot, slot.hva_to_gfn(max(rng.start, lo)),
                                  slot.hva_to_gfn(min(rng.end, hi)), rng.may_block)
        if not found_memslot:
            found_memslot = True
            await KVM_MMU_LOCK(kvm)
            if rng.on_lock is not None:
                await rng.on_lock(kvm)
            if rng.handler is kvm_null_fn:
                break
        ret |= await rng.handler(kvm, gfn_range)
    if rng.flush_on_ret and ret:
        await arch().kvm_flush_remote_tlbs(kvm)
    if found_memslot:
        await KVM_MMU_UNLOCK(kvm)
    await srcu_read_unlock(kvm.srcu, idx)
    return found_memslot


async def rcu_dereference_memslots(kvm) -> kvm_memslots:
    """include/linux/kvm_host.h: __kvm_memslots: srcu_dereference_check(kvm->memslots[as_id],
    &kvm->srcu, lockdep_is_held(&kvm->slots_lock) || !refcount_read(&kvm->users_count)):
    with PROVE_RCU a reader outside kvm->srcu that holds neither is "suspicious RCU
    usage".  (The invalidation callbacks would be safe without kvm->srcu, since a memslot
    swap waits for mn_active_invalidate_count; KVM keeps the read section anyway, and
    this check is what says so -- Sean Christopherson, 2021-08-02, on not exempting
    mn_active_invalidate_count.)"""
    await Op((kvm, "memslots"), READ, "srcu_dereference(kvm->memslots[0])")
    kasan_check(kvm, "memslots", False)
    if kernel().lockdep.on and not (srcu_read_lock_held(kvm.srcu)
                                    or kvm.slots_lock.owner is current()):
        await Op((kvm, "users_count"), READ, "refcount_read(&kvm->users_count)")
        if kvm.users_count:
            kernel().lockdep.rcu_suspicious("include/linux/kvm_host.h", 1046,
                                            "suspicious rcu_dereference_check() usage")
    return kvm.memslots


@kfunc("virt/kvm/kvm_main.c")
async def __kvm_faultin_pfn(slot, mm, gfn: int, write: bool):
    return await hva_to_pfn(mm, slot.gfn_to_hva(gfn), write)


def kvm_arch_guest_memory_reclaimed(kvm) -> None:
    """x86: the SEV cache flush; nothing for a non-SEV guest, nothing on arm64."""


# -- the notifier callbacks ---------------------------------------------------------------

@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_invalidate_range_start(sub, range_) -> int:
    """kvm_main.c: count++ under mn_invalidate_lock (always, memslot hit or not), then the
    pfn caches, then the memslot walk that zaps the SPTEs.  Never fails."""
    kvm = mmu_notifier_to_kvm(sub)
    hva_range = kvm_mmu_notifier_range(range_.start, range_.end, kvm_mmu_unmap_gfn_range,
                                       kvm_mmu_invalidate_begin, True,
                                       mn.mmu_notifier_range_blockable(range_))
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    await store(kvm, "mn_active_invalidate_count", count + 1)
    await spin_unlock(kvm.mn_invalidate_lock)
    await pfncache.gfn_to_pfn_cache_invalidate_start(kvm, range_.start, range_.end)
    if await kvm_handle_hva_range(kvm, hva_range):
        kvm_arch_guest_memory_reclaimed(kvm)
    return 0


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_invalidate_range_end(sub, range_) -> None:
    """kvm_main.c: the walk (seq++, in_progress-- on a memslot hit), then count-- under
    mn_invalidate_lock, then wake the memslot updater if the count reached zero."""
    kvm = mmu_notifier_to_kvm(sub)
    hva_range = kvm_mmu_notifier_range(range_.start, range_.end, kvm_null_fn,
                                       kvm_mmu_invalidate_end, False,
                                       mn.mmu_notifier_range_blockable(range_))
    await kvm_handle_hva_range(kvm, hva_range)
    await spin_lock(kvm.mn_invalidate_lock)
    count = await load(kvm, "mn_active_invalidate_count")
    if not WARN_ON_ONCE(not count, "!kvm->mn_active_invalidate_count"):
        count -= 1
        await store(kvm, "mn_active_invalidate_count", count)
    wake = count == 0
    await spin_unlock(kvm.mn_invalidate_lock)
    if wake:
        await rcuwait_wake_up(kvm.mn_memslots_update_rcuwait)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_release(sub, mm) -> None:
    """kvm_main.c: kvm_mmu_notifier_release: zap every SPTE under kvm->srcu."""
    kvm = mmu_notifier_to_kvm(sub)
    idx = await srcu_read_lock(kvm.srcu)
    await kvm_flush_shadow_all(kvm)
    await srcu_read_unlock(kvm.srcu, idx)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_flush_shadow_all(kvm) -> None:
    await arch().kvm_arch_flush_shadow_all(kvm)
    kvm_arch_guest_memory_reclaimed(kvm)


kvm_mmu_notifier_ops = mn.mmu_notifier_ops(
    "kvm_mmu_notifier_ops",
    invalidate_range_start=kvm_mmu_notifier_invalidate_range_start,
    invalidate_range_end=kvm_mmu_notifier_invalidate_range_end,
    release=kvm_mmu_notifier_release,
)


def kvm_init_mmu_notifier(kvm) -> None:
    """kvm_main.c: kvm_init_mmu_notifier: register on the creating process's mm."""
    kvm.mmu_notifier = mn.mmu_notifier(kvm_mmu_notifier_ops, owner=kvm,
                                       cname=f"{kvm.cname}->mmu_notifier")
    mn.register_at_setup(kvm.mmu_notifier, kvm.mm)


# -- memslot updates ---------------------------------------------------------------------

@kfunc("virt/kvm/kvm_main.c")
async def kvm_swap_active_memslots(kvm, slots: kvm_memslots) -> None:
    """kvm_main.c: kvm_swap_active_memslots: wait, in TASK_UNINTERRUPTIBLE and without a
    timeout, until no invalidation is in flight; publish the new memslots under
    mn_invalidate_lock; drop slots_arch_lock; wait for kvm->srcu readers."""
    await spin_lock(kvm.mn_invalidate_lock)
    await prepare_to_rcuwait(kvm.mn_memslots_update_rcuwait)
    while await load(kvm, "mn_active_invalidate_count"):
        await set_current_state(TASK_UNINTERRUPTIBLE)
        await spin_unlock(kvm.mn_invalidate_lock)
        await schedule()
        await spin_lock(kvm.mn_invalidate_lock)
    await finish_rcuwait(kvm.mn_memslots_update_rcuwait)
    await Op((kvm, "memslots"), WRITE, "rcu_assign_pointer(kvm->memslots[0], slots)")
    kvm.memslots = slots
    await spin_unlock(kvm.mn_invalidate_lock)
    await mutex_unlock(kvm.slots_arch_lock)
    await synchronize_srcu_expedited(kvm.srcu)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_invalidate_memslot(kvm, old, invalid) -> None:
    """kvm_main.c: kvm_invalidate_memslot: publish an INVALID copy (so vCPUs stop using
    it), then zap the old slot's SPTEs."""
    await kvm_swap_active_memslots(kvm, kvm_memslots(
        [invalid if s is old else s for s in kvm.memslots.slots]))
    await mutex_lock(kvm.slots_arch_lock)
    await arch().kvm_arch_flush_shadow_memslot(kvm, old)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_set_memslot(kvm, old, new, change: str) -> None:
    """kvm_main.c: kvm_set_memslot: DELETE and MOVE swap twice (first to an INVALID
    copy, then to the final set); CREATE swaps once."""
    await mutex_lock(kvm.slots_arch_lock)
    invalid = None
    if change in ("DELETE", "MOVE"):
        invalid = old.copy(flags={KVM_MEMSLOT_INVALID})
        await kvm_invalidate_memslot(kvm, old, invalid)
    current = invalid or old
    if change == "DELETE":
        final = [s for s in kvm.memslots.slots if s is not current]
    elif change == "MOVE":
        final = [new if s is current else s for s in kvm.memslots.slots]
    else:                                      # CREATE
        final = kvm.memslots.slots + [new]
    await kvm_swap_active_memslots(kvm, kvm_memslots(final))


@kfunc("virt/kvm/kvm_main.c")
async def kvm_vm_ioctl_set_memory_region(kvm, slot_id: int, change: str, new=None) -> None:
    """kvm_main.c: KVM_SET_USER_MEMORY_REGION under kvm->slots_lock."""
    await mutex_lock(kvm.slots_lock)
    await Op((kvm, "memslots"), READ, "id_to_memslot()")
    old = next((s for s in kvm.memslots.slots if s.id == slot_id), None)
    await kvm_set_memslot(kvm, old, new, change)
    await mutex_unlock(kvm.slots_lock)


# -- the file interface: VM and vCPU fds --------------------------------------------------

KVM_SET_USER_MEMORY_REGION = "KVM_SET_USER_MEMORY_REGION"
KVM_RUN = "KVM_RUN"
EINTR = -4
EIO = -5
ENOTTY = -25


@kfunc("virt/kvm/kvm_main.c")
async def kvm_vm_ioctl(filp, ioctl: str, arg) -> int:
    """kvm_main.c: kvm_vm_ioctl, the VM fd's unlocked_ioctl (called with the file
    referenced by fdget): -EIO from a process other than the VM's creator
    (kvm->mm != current->mm); KVM_SET_USER_MEMORY_REGION with ``arg`` = (slot id,
    change).  Simplified: kvm->vm_dead is not read (only KVM_BUG_ON would set it)."""
    kvm = filp.private_data
    kasan_check(kvm, "mm", False)
    if kvm.mm is not current().mm:
        return EIO
    if ioctl == KVM_SET_USER_MEMORY_REGION:
        slot_id, change = arg
        r = await kvm_vm_ioctl_set_memory_region(kvm, slot_id, change)
        return r or 0
    return ENOTTY


@kfunc("virt/kvm/kvm_main.c")
async def kvm_vcpu_ioctl(filp, ioctl: str, arg) -> int:
    """kvm_main.c: kvm_vcpu_ioctl, the vCPU fd's unlocked_ioctl: -EIO from another
    process; then mutex_lock_killable(&vcpu->mutex) -- -EINTR if a fatal signal ends
    the wait for it -- and KVM_RUN -> kvm_arch_vcpu_ioctl_run under it.  (The
    arch's unlocked vCPU ioctls, which do not take vcpu->mutex, are not modelled.)"""
    vcpu = filp.private_data
    kasan_check(vcpu.kvm, "mm", False)
    if vcpu.kvm.mm is not current().mm:
        return EIO
    if await mutex_lock_killable(vcpu.mutex):
        return EINTR
    r = ENOTTY
    if ioctl == KVM_RUN:
        r = await arch().kvm_arch_vcpu_ioctl_run(vcpu)
        r = r or 0
    await mutex_unlock(vcpu.mutex)
    return r


@kfunc("virt/kvm/kvm_main.c")
async def kvm_vm_release(inode, filp) -> int:
    """kvm_main.c: kvm_vm_release, the VM file's ->release (from __fput, when the last
    reference to the VM file goes): kvm_irqfd_release (no irqfds are modelled), then
    kvm_put_kvm."""
    await kvm_put_kvm(filp.private_data)
    return 0


@kfunc("virt/kvm/kvm_main.c")
async def kvm_vcpu_release(inode, filp) -> int:
    """kvm_main.c: kvm_vcpu_release, the vCPU file's ->release: the vCPU fd holds a
    reference on its VM (kvm_get_kvm in kvm_vm_ioctl_create_vcpu); drop it."""
    vcpu = filp.private_data
    await kvm_put_kvm(vcpu.kvm)
    return 0


def kvm_vm_fops():
    """kvm_main.c: kvm_vm_fops (looked up at call time, so that a patch of a release or
    ioctl function is what runs)."""
    return file_operations("kvm_vm_fops", release=kvm_vm_release,
                           unlocked_ioctl=kvm_vm_ioctl)


def kvm_vcpu_fops():
    """kvm_main.c: kvm_vcpu_fops."""
    return file_operations("kvm_vcpu_fops", release=kvm_vcpu_release,
                           unlocked_ioctl=kvm_vcpu_ioctl)


# -- teardown -----------------------------------------------------------------------

def kvm_get_kvm(kvm) -> None:
    """kvm_main.c: kvm_get_kvm: refcount_inc(&kvm->users_count), at setup."""
    kvm.users_count += 1


@kfunc("virt/kvm/kvm_main.c")
async def kvm_put_kvm(kvm) -> None:
    if await atomic_dec_and_test(kvm, "users_count",
                                 "refcount_dec_and_test(&kvm->users_count)"):
        _note_destroy_context(kvm)
        await kvm_destroy_vm(kvm)


def _note_destroy_context(kvm) -> None:
    """Not kernel code: what the end-of-run property thread-group-outlives-vm looks at
    -- whether this kvm_destroy_vm comes from a thread's exit, and which other threads
    of the process could still use the mm (they have not passed exit_mm)."""
    ts = current()
    others = []
    if ts.signal is not None:
        others = [t.comm for t in ts.signal.threads if t is not ts and t.mm is not None
                  and not t.exited]
    kvm.destroy_context = (ts.comm, "do_exit" in call_trace(), others)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_destroy_vm(kvm) -> None:
    """kvm_main.c: kvm_destroy_vm, the MMU-notifier block: unregister (which waits for
    every callback in flight), then fix up a count left unbalanced by a start whose end
    will never come -- nobody can be waiting in kvm_swap_active_memslots any more.  Then
    the VM is freed (kvm_arch_free_vm): a notifier callback still running on it after
    that is a use-after-free of struct kvm."""
    mm = kvm.mm
    await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
    WARN_ON(await rcuwait_active(kvm.mn_memslots_update_rcuwait),
            "rcuwait_active(&kvm->mn_memslots_update_rcuwait)")
    if await load(kvm, "mn_active_invalidate_count"):
        await store(kvm, "mn_active_invalidate_count", 0)
    else:
        WARN_ON(kvm.mmu_invalidate_in_progress, "kvm->mmu_invalidate_in_progress")
    await kvm_destroy_vm_free(kvm, mm)


async def kvm_destroy_vm_free(kvm, mm) -> None:
    """The rest of kvm_destroy_vm (kvm_main.c): kvm_arch_destroy_vm, kvm_free_memslots,
    cleanup_srcu_struct, kvm_arch_free_vm (the struct is freed), then mmdrop(mm)."""
    await Op((kvm, "memslots"), WRITE, "kvm_free_memslots()")
    kvm.destroyed = True
    kvm_arch_free_vm(kvm)
    mmdrop(mm)


def kvm_arch_free_vm(kvm) -> None:
    """include/linux/kvm_host.h (x86: arch/x86/include/asm/kvm_host.h): kvm_arch_free_vm:
    kvfree(kvm)."""
    kfree(kvm)
