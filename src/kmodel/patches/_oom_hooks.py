"""Pieces shared by the designs that add an OOM hook to the mmu_notifier API: the OOM
killer with a call inserted where a design calls it, and KVM's detach helper (Kamal's
kvm_mmu_notifier_detach, the fix-up block moved out of kvm_destroy_vm)."""

from kmodel.linux.include.rwonce import load, store
from kmodel.linux.include.sched_mm import mmdrop, mmgrab
from kmodel.linux.kernel.panic import WARN_ON
from kmodel.linux.kernel.rcuwait import rcuwait_active
from kmodel.linux.mm import oom_kill
from kmodel.linux.virt.kvm import kvm_main


def oom_kill_process_calling(hook):
    """mm/oom_kill.c: __oom_kill_process with ``hook(mm)`` right after mmgrab(mm), where
    shaikh.kamal's 2026-03-25 patch calls mmu_notifier_oom_enter: under task_lock."""
    async def __oom_kill_process(victim, message):
        p = await oom_kill.find_lock_task_mm(victim)
        if p is None:
            return
        victim = p
        mm = victim.mm
        mmgrab(mm)
        await hook(mm)                       # "Notify MMU notifiers about the OOM event"
        await oom_kill.do_send_sig_info_sigkill(victim)
        oom_kill.mark_oom_victim(victim)
        oom_kill.reaper_state().log.append(f"{message}: Killed process {victim.pid} "
                                           f"({victim.comm})")
        await oom_kill.task_unlock(victim)
        await oom_kill.queue_oom_reaper(victim)
        mmdrop(mm)
    return __oom_kill_process


async def kvm_fixup_counts(kvm):
    """The block kvm_destroy_vm runs after unregistering (kvm_main.c)."""
    WARN_ON(await rcuwait_active(kvm.mn_memslots_update_rcuwait),
            "rcuwait_active(&kvm->mn_memslots_update_rcuwait)")
    if await load(kvm, "mn_active_invalidate_count"):
        await store(kvm, "mn_active_invalidate_count", 0)
    else:
        WARN_ON(kvm.mmu_invalidate_in_progress, "kvm->mmu_invalidate_in_progress")


async def kvm_destroy_vm_tail(kvm):
    """kvm_destroy_vm after the notifier block: free the memslots and struct kvm, then
    mmdrop(mm) (kvm_main.c)."""
    await kvm_main.kvm_destroy_vm_free(kvm, kvm.mm)


__all__ = ["oom_kill_process_calling", "kvm_fixup_counts", "kvm_destroy_vm_tail",
           "kvm_main"]
