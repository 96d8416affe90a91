"""Paolo Bonzini's sketch of 2026-03-30 (``after-oom-unregister-sync``) with the two
repairs a reviewer would ask for first, everything else as posted:

- mmu_notifier_oom_enter() returns at once for an mm without notifier subscriptions
  (``if (!subscriptions) return;``, as v2 later added), instead of dereferencing NULL;
- the subscriptions taken off the list are collected in an array (``oom_subs[]``), not
  re-linked through their own ``hlist`` node onto an on-stack list: each stays unhashed
  from its hlist_del_init_rcu() on, no concurrent SRCU walker standing on it is steered
  into ``oom_list``, and no pointer into the function's frame outlives it.

``kvm->mn_registered`` stays the plain shared field of the posted version.
"""

from kmodel.linux.include.rculist import hlist_del_init_rcu
from kmodel.linux.include.list import hlist_for_each_entry_safe
from kmodel.linux.include.sched_mm import mmdrop
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.kernel.panic import BUG_ON, WARN_ON
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main
from kmodel.patches import _oom_hooks, after_oom_unregister_sync as posted
from kmodel.patching import Patch

patch = Patch(
    name="after-oom-unregister-sync-fixed",
    title="->after_oom_unregister, repaired: NULL check, no re-hash onto an on-stack list",
    author="Paolo Bonzini (repaired)", date="2026-03-30",
    summary="after-oom-unregister-sync with a NULL check and the detached subscriptions "
            "kept in an array.",
)


@patch.new_function("mm/mmu_notifier.c", config="MMU_NOTIFIER", stub=True)
async def mmu_notifier_oom_enter(mm):
    if not mn.kernel().config.MMU_NOTIFIER:
        return                           # the header's empty static inline stub
    subs = mm.notifier_subscriptions
    if subs is None:
        return
    oom_subs = []                        # struct mmu_notifier *oom_subs[]
    idx = await mn.srcu_read_lock(mn.srcu())
    await spin_lock(subs.lock)
    async for sub in hlist_for_each_entry_safe(subs.list):
        if getattr(sub.ops, "after_oom_unregister", None) is None:
            continue
        if WARN_ON(sub.ops.alloc_notifier is not None, "subscription->ops->alloc_notifier"):
            continue
        await hlist_del_init_rcu(sub.hlist)
        oom_subs.append(sub)
    await spin_unlock(subs.lock)
    for sub in oom_subs:
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await mn.srcu_read_unlock(mn.srcu(), idx)
    if not oom_subs:
        return
    await mn.synchronize_srcu(mn.srcu())
    for sub in oom_subs:
        await sub.ops.after_oom_unregister(sub, mm)
        BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
        mmdrop(mm)


patch.overrides.update({k: v for k, v in posted.patch.overrides.items()
                        if k != "__oom_kill_process"})
# KVM's callback is the posted one: this design adds it too
patch.new["kvm_mmu_notifier_after_oom_unregister"] = \
    posted.patch.new["kvm_mmu_notifier_after_oom_unregister"]
patch.set(kvm_main.kvm_mmu_notifier_ops, "after_oom_unregister",
          posted.kvm_mmu_notifier_after_oom_unregister)
patch.override("__oom_kill_process")(_oom_hooks.oom_kill_process_calling(mmu_notifier_oom_enter))
