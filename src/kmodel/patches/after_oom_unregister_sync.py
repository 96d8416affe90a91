"""Paolo Bonzini's sketch, 2026-03-30, as posted: an ->after_oom_unregister callback.
The mm core's mmu_notifier_oom_enter() moves every subscriber that has one from the
subscription list onto an on-stack ``oom_list`` (hlist_del_init_rcu, then hlist_add_head,
under the subscriptions lock, inside srcu), calls their ->release, leaves the read
section, waits with synchronize_srcu() for every other callback to finish, then calls
->after_oom_unregister and drops the registration's mm reference.  KVM's
after_oom_unregister marks the notifier unregistered and fixes the counts up
("kvm->mn_registered = false; /* or xchg, it's the same */ ..."), and kvm_destroy_vm
unregisters only while ``kvm->mn_registered`` ("or something like that": the mail shows
no kvm_destroy_vm hunk; this is the reading its prose asks for).

Transcribed literally from the attached mm.patch (its x86 nested-MMU hunks are
unrelated and left out):

- no NULL check of ``mm->notifier_subscriptions``: an mm that never had a notifier
  makes ``spin_lock(&subscriptions->lock)`` a NULL pointer dereference;
- the subscription stays linked on ``oom_list`` after the function returns (hashed, with
  ``pprev`` into the dead stack frame), so a later mmu_notifier_unregister() of it still
  runs ->release and unlinks it through that frame;
- ``kvm->mn_registered`` is a plain shared field: its store in after_oom_unregister and
  its load in kvm_destroy_vm are visible accesses (and can race).

The mail does not say where mmu_notifier_oom_enter() is called; the model calls it where
the thread's hook was at the time: __oom_kill_process, right after mmgrab(mm)
(shaikh.kamal's patch of 2026-03-28).  ``after-oom-unregister-sync-fixed`` is the same
design with the first two points repaired.
"""

from kmodel.linux.include.list import HLIST_HEAD, frame_returned, hlist_add_head, \
    hlist_empty, hlist_for_each_entry, hlist_for_each_entry_safe
from kmodel.linux.include.rculist import hlist_del_init_rcu
from kmodel.linux.include.rwonce import load, store
from kmodel.linux.include.sched_mm import mmdrop
from kmodel.linux.kernel.core import kernel
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.kernel.panic import BUG_ON, WARN_ON
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_host, kvm_main
from kmodel.patches import _oom_hooks
from kmodel.patching import Patch

patch = Patch(
    name="after-oom-unregister-sync",
    title="->after_oom_unregister; mmu_notifier_oom_enter() unregisters synchronously",
    author="Paolo Bonzini", date="2026-03-30",
    summary="Detach + ->release under srcu, synchronize_srcu(), then "
            "->after_oom_unregister; called from __oom_kill_process.  As posted.",
)


async def spin_lock_subscriptions(subs):
    """``spin_lock(&subscriptions->lock)`` with ``subscriptions`` possibly NULL."""
    if subs is None:
        from kmodel.linux.arch.fault import null_pointer_dereference
        null_pointer_dereference("spin_lock(&subscriptions->lock), subscriptions == NULL",
                                 0x10 if kernel().config.PREEMPT_RT else 0xc, True)
    await spin_lock(subs.lock)


@patch.new_function("mm/mmu_notifier.c", config="MMU_NOTIFIER", stub=True)
async def mmu_notifier_oom_enter(mm):
    if not mn.kernel().config.MMU_NOTIFIER:
        return                           # the header's empty static inline stub
    subs = mm.notifier_subscriptions
    oom_list = HLIST_HEAD("oom_list")
    idx = await mn.srcu_read_lock(mn.srcu())
    # "Prevent further calls to the MMU notifier, except for release and
    # after_oom_unregister."
    await spin_lock_subscriptions(subs)
    async for sub in hlist_for_each_entry_safe(subs.list):
        if getattr(sub.ops, "after_oom_unregister", None) is None:
            continue
        if WARN_ON(sub.ops.alloc_notifier is not None, "subscription->ops->alloc_notifier"):
            continue
        await hlist_del_init_rcu(sub.hlist)
        await hlist_add_head(sub.hlist, oom_list)
    await spin_unlock(subs.lock)
    async for sub in hlist_for_each_entry(oom_list):
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await mn.srcu_read_unlock(mn.srcu(), idx)
    if await hlist_empty(oom_list):
        frame_returned(oom_list)
        return
    await mn.synchronize_srcu(mn.srcu())
    async for sub in hlist_for_each_entry_safe(oom_list):
        await sub.ops.after_oom_unregister(sub, mm)
        BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
        mmdrop(mm)
    frame_returned(oom_list)


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_after_oom_unregister(sub, mm):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    await store(kvm, "mn_registered", False)
    await _oom_hooks.kvm_fixup_counts(kvm)


_create = kvm_host.kvm_create_vm.impl


@patch.override("kvm_create_vm")
def kvm_create_vm(mm, slots, gpc_uhvas=()):
    kvm = _create(mm, slots, gpc_uhvas)
    kvm.mn_registered = True          # kvm_init_mmu_notifier() succeeded
    return kvm


@patch.override("kvm_destroy_vm")
async def kvm_destroy_vm(kvm):
    if await load(kvm, "mn_registered"):
        await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
    await _oom_hooks.kvm_fixup_counts(kvm)
    await _oom_hooks.kvm_destroy_vm_tail(kvm)


patch.set(kvm_main.kvm_mmu_notifier_ops, "after_oom_unregister",
          kvm_mmu_notifier_after_oom_unregister)
patch.override("__oom_kill_process")(_oom_hooks.oom_kill_process_calling(mmu_notifier_oom_enter))
