"""shaikh kamaluddin, 2026-03-25: the ->oom_enter callback of oom-enter-unregister, with
KVM's kvm_mmu_notifier_detach deferred to a workqueue ("Then defered the
kvm_mmu_notifier_detach() using workqueue, then above issue got fixed").  Paolo
(2026-03-26): "if you defer removal to some time after the OOM reaper starts, you'd have
the same problem as before with sleeping spinlocks."
"""

from kmodel.linux.kernel.workqueue import queue_work, work_struct
from kmodel.linux.virt.kvm import kvm_main
from kmodel.patches import _oom_hooks, oom_enter_unregister as v1hook
from kmodel.patching import Patch

patch = Patch(
    name="oom-enter-deferred-detach",
    title="->oom_enter callback; KVM detaches its notifier from a workqueue",
    author="shaikh kamaluddin", date="2026-03-25",
    summary="As oom-enter-unregister, but kvm_mmu_notifier_detach runs in a kworker.",
)
# oom-enter-unregister's new functions, which this design calls (its own
# kvm_mmu_notifier_oom_enter, below, takes the place of that one's)
patch.new.update(v1hook.patch.new)


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_detach_work(work):
    await v1hook.kvm_mmu_notifier_detach(work.kvm)


@patch.new_function("virt/kvm/kvm_main.c")
async def kvm_mmu_notifier_oom_enter(sub, mm):
    kvm = kvm_main.mmu_notifier_to_kvm(sub)
    work = work_struct(kvm_mmu_notifier_detach_work, "kvm_mmu_notifier_detach_work")
    work.kvm = kvm
    await queue_work(work)


patch.set(kvm_main.kvm_mmu_notifier_ops, "oom_enter", kvm_mmu_notifier_oom_enter)
patch.override("__oom_kill_process")(
    _oom_hooks.oom_kill_process_calling(v1hook.mmu_notifier_oom_enter))
patch.override("kvm_destroy_vm")(v1hook.kvm_destroy_vm)
