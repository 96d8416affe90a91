"""Paolo Bonzini's sketch, 2026-03-30: an ->after_oom_unregister callback.  The mm core's
mmu_notifier_oom_enter() unhashes every subscriber that has one (under the subscriptions
lock, inside srcu), calls their ->release, leaves the read section, waits with
synchronize_srcu() for every other callback to finish, then calls
->after_oom_unregister and drops the registration's mm reference.  KVM's
after_oom_unregister only marks the notifier unregistered and fixes the counts up
("kvm->mn_registered = false; ...").  Called where the thread called the OOM hook at that
point: __oom_kill_process, right after mmgrab(mm) (shaikh.kamal's patch of 2026-03-28).
"""

from kmodel.linux.kernel.core import kfunc
from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
from kmodel.linux.kernel.panic import BUG_ON, WARN_ON
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main
from kmodel.patches import _oom_hooks
from kmodel.patching import Patch

patch = Patch(
    name="after-oom-unregister-sync",
    title="->after_oom_unregister; mmu_notifier_oom_enter() unregisters synchronously",
    author="Paolo Bonzini", date="2026-03-30",
    summary="Detach + ->release under srcu, synchronize_srcu(), then "
            "->after_oom_unregister; called from __oom_kill_process.",
)


@patch.new_function("mm/mmu_notifier.c", config="MMU_NOTIFIER", stub=True)
async def mmu_notifier_oom_enter(mm):
    subs = mm.notifier_subscriptions
    if subs is None or not mn.kernel().config.MMU_NOTIFIER:
        return
    oom_list = []
    idx = await mn.srcu_read_lock(mn.srcu())
    await spin_lock(subs.lock)
    for sub in await mn._walk(subs, "oom_enter"):
        if getattr(sub.ops, "after_oom_unregister", None) is None:
            continue
        if WARN_ON(sub.ops.alloc_notifier is not None, "subscription->ops->alloc_notifier"):
            continue
        await mn.hlist_del_init_rcu(subs, sub)
        oom_list.append(sub)
    await spin_unlock(subs.lock)
    for sub in oom_list:
        if sub.ops.release is not None:
            await sub.ops.release(sub, mm)
    await mn.srcu_read_unlock(mn.srcu(), idx)
    if not oom_list:
        return
    await mn.synchronize_srcu(mn.srcu())
    for sub in oom_list:
        await sub.ops.after_oom_unregister(sub, mm)
        BUG_ON(mm.mm_count <= 0, "atomic_read(&mm->mm_count) <= 0")
        mn.mmdrop(mm)


@kfunc("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_after_oom_unregister(sub, mm):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    kvm.mn_registered = False
    await _oom_hooks.kvm_fixup_counts(kvm)


patch.set(kvm_main.kvm_mmu_notifier_ops, "after_oom_unregister",
          kvm_mmu_notifier_after_oom_unregister)
patch.override("__oom_kill_process")(_oom_hooks.oom_kill_process_calling(mmu_notifier_oom_enter))


@patch.override("kvm_destroy_vm")
async def kvm_destroy_vm(kvm):
    if getattr(kvm, "mn_registered", True):
        await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
        await _oom_hooks.kvm_fixup_counts(kvm)
    await _oom_hooks.kvm_destroy_vm_tail(kvm)
