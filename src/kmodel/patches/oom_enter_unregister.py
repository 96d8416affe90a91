"""shaikh kamaluddin, 2026-03-25 (the patch posted 2026-03-28): a new ->oom_enter
mmu_notifier callback, called from __oom_kill_process through __mmu_notifier_oom_enter
(inside a read section of the global srcu); KVM's implementation unregisters its
notifier on the spot (kvm_mmu_notifier_detach, also used by kvm_destroy_vm).  Kamal's
own report: "WARNING: possible recursive locking detected ... lock(srcu) at
__synchronize_srcu / already holding lock at __mmu_notifier_oom_enter".

Transcribed from the diff in the 2026-03-28 mail.  The pr_info() lines are left out.  The
walk is the posted ``hlist_for_each_entry_rcu(..., rcu_read_lock_held(&srcu))``: its
lockdep condition is compiled only with CONFIG_PROVE_RCU_LIST (not a modelled symbol),
where the posted code would not build (rcu_read_lock_held() takes no argument), so the
model walks without that check.
"""

from kmodel.engine import WRITE, Op
from kmodel.linux.include.rculist import hlist_for_each_entry_rcu
from kmodel.linux.mm import mmu_notifier as mn
from kmodel.linux.virt.kvm import kvm_main
from kmodel.patches import _oom_hooks
from kmodel.patching import Patch

patch = Patch(
    name="oom-enter-unregister",
    title="->oom_enter callback; KVM unregisters its notifier from it",
    author="shaikh kamaluddin", date="2026-03-25",
    summary="mmu_notifier_oom_enter() from __oom_kill_process; KVM's oom_enter calls "
            "mmu_notifier_unregister() inside the srcu read section.",
)


@patch.new_function("include/linux/mmu_notifier.h", config="MMU_NOTIFIER", stub=False)
async def mmu_notifier_oom_enter(mm):
    if mn.mm_has_notifiers(mm):
        await __mmu_notifier_oom_enter(mm)


@patch.new_function("mm/mmu_notifier.c")
async def __mmu_notifier_oom_enter(mm):
    subs = mm.notifier_subscriptions
    if subs is None:
        return
    idx = await mn.srcu_read_lock(mn.srcu())
    async for sub in hlist_for_each_entry_rcu(subs.list):
        if getattr(sub.ops, "oom_enter", None) is not None:
            await sub.ops.oom_enter(sub, mm)
    await mn.srcu_read_unlock(mn.srcu(), idx)


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_detach(kvm):
    await Op((kvm, "mn_killed"), WRITE, "xchg(&kvm->mn_killed, 1)")
    if getattr(kvm, "mn_killed", 0):
        return
    kvm.mn_killed = 1
    await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
    await _oom_hooks.kvm_fixup_counts(kvm)


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_oom_enter(sub, mm):
    await kvm_mmu_notifier_detach(kvm_main.mmu_notifier_to_kvm(sub))


patch.set(kvm_main.kvm_mmu_notifier_ops, "oom_enter", kvm_mmu_notifier_oom_enter)
patch.override("__oom_kill_process")(_oom_hooks.oom_kill_process_calling(mmu_notifier_oom_enter))


@patch.override("kvm_destroy_vm")
async def kvm_destroy_vm(kvm):
    await kvm_mmu_notifier_detach(kvm)
    await _oom_hooks.kvm_destroy_vm_tail(kvm)
