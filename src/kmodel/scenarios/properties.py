"""What must hold when a run ends, named and listed in one place.

The kernel's own detectors (might_resched, lockdep, WARN_ON/KVM_BUG_ON, the hung-task and
soft-lockup watchdogs, KASAN's view of freed pages, KCSAN) report during the run.  These
are the model's own end-of-run checks, for consequences the kernel would only show later
(a hang the next time a memslot changes, a guest that can never fault a page in); each
report says it comes from the model.
"""

from __future__ import annotations

from ..engine import Report
from ..linux.virt.kvm.kvm_host import INVALID_GPA


def counters_balanced(sc, ex) -> None:
    """With every task quiescent and the VM alive, no invalidation is in flight: both
    mn_active_invalidate_count and mmu_invalidate_in_progress are back to zero."""
    kvm = getattr(sc, "kvm", None)
    if kvm is None or getattr(kvm, "destroyed", False) or ex.outcome != "done":
        return
    count, inprog = kvm.mn_active_invalidate_count, kvm.mmu_invalidate_in_progress
    if count == 0 and inprog == 0:
        return
    lines = ["kmodel invariant violated: counters-balanced",
             f"  at quiescence kvm->mn_active_invalidate_count = {count}, "
             f"kvm->mmu_invalidate_in_progress = {inprog}",
             "  every start must have had exactly one end."]
    if count:
        lines.append("  consequence: the next KVM_SET_USER_MEMORY_REGION waits in "
                     "kvm_swap_active_memslots forever (TASK_UNINTERRUPTIBLE).")
    if inprog > 0:
        lines.append("  consequence: vCPU faults in the invalidated range retry forever "
                     "(x86: mmu_invalidate_retry_gfn; arm64: every fault).")
    if inprog < 0:
        lines.append("  mmu_invalidate_in_progress underflowed.")
    title = ("kmodel invariant: mmu_invalidate_in_progress "
             + ("underflowed" if inprog < 0 else "left raised" if inprog else "balanced")
             + (", mn_active_invalidate_count left raised" if count else ""))
    ex.report(Report("invariant", title, "(end of run)", "kvm_mmu_notifier_invalidate_range_end", [],
                     "\n".join(lines)))


def vcpu_can_progress(sc, ex) -> None:
    """A vCPU that gave up retrying a fault could never have succeeded: the invalidation
    that made it retry is still in progress at the end (the VM would hang).  Not for a
    VM destroyed in the run: after mmu_notifier_release or _unregister an invalidation
    in flight never ends in KVM (kvm_destroy_vm says so), and its vCPUs are gone."""
    kvm = getattr(sc, "kvm", None)
    if kvm is None or getattr(kvm, "destroyed", False) or ex.outcome != "done":
        return
    for vcpu in getattr(sc, "vcpus", []):
        gfn = vcpu.stuck_gfn
        if gfn is None or not kvm.mmu_invalidate_in_progress:
            continue
        if sc.arch == "x86" and kvm.mmu_invalidate_range_start != INVALID_GPA and not (
                kvm.mmu_invalidate_range_start <= gfn < kvm.mmu_invalidate_range_end):
            continue
        name = f"qemu-vcpu{vcpu.vcpu_id}"
        text = (f"kmodel: livelock: {name} can never fault in gfn {gfn:#x}: "
                f"mmu_invalidate_in_progress = {kvm.mmu_invalidate_in_progress} and no "
                f"invalidation end can come; the vCPU re-enters the guest and faults "
                f"forever ({vcpu.retries} retries seen)")
        fn = "mmu_invalidate_retry_gfn" if sc.arch == "x86" else "mmu_invalidate_retry"
        ex.report(Report("livelock", f"livelock: vCPU fault retries forever in {fn}",
                         name, fn, [fn], text))


def no_spte_maps_freed_page(sc, ex) -> None:
    """No secondary-MMU entry points at a freed page when the run ends."""
    kvm = getattr(sc, "kvm", None)
    if kvm is None:
        return
    for gfn, page in sorted(kvm.arch.sptes.items()):
        if page.freed and not getattr(page, "uaf_reported", False):
            ex.report(Report("use-after-free",
                             "use-after-free: secondary MMU maps a freed page (end)",
                             "(end of run)",
                             "no_spte_maps_freed_page", [],
                             f"kmodel: at the end gfn {gfn:#x} still maps pfn {page.pfn:#x},"
                             f" freed by {page.freed_by}"))
            return


def reaped_stays_reaped(sc, ex) -> None:
    """Once the OOM reaper has marked an mm MMF_UNSTABLE, a range unmapped from it gets
    no page back: a fault there must fail (check_stable_address_space: VM_FAULT_SIGBUS),
    or the process -- or a secondary MMU through GUP -- would see a fresh zero page where
    its data was (mm/memory.c: "the oom reaper might have torn down the address
    space")."""
    for mm in (getattr(sc, "mm", None), getattr(sc, "bash_mm", None)):
        if mm is None:
            continue
        for vma in mm.vmas:
            for start, end in vma.unmapped_unstable:
                back = sorted(a for a in vma.ptes if start <= a < end)
                if not back:
                    continue
                addr = back[0]
                ex.report(Report(
                    "invariant", "kmodel invariant: a reaped mm regained a page",
                    "(end of run)", "__handle_mm_fault", [],
                    f"kmodel invariant violated: reaped-stays-reaped\n"
                    f"  {mm.cname} is MMF_UNSTABLE and [{start:#x}, {end:#x}) of {vma.name} "
                    f"was unmapped after that,\n  yet at the end address {addr:#x} maps pfn "
                    f"{vma.ptes[addr].pfn:#x}: a fault installed a page into a reaped "
                    f"address space\n  (check_stable_address_space must fail it)."))
                return


def subscribers(mm) -> list:
    """The subscribers on ``mm``'s list now, first to last (a plain walk at the end)."""
    subs = getattr(mm, "notifier_subscriptions", None)
    out, node = [], subs.list.first if subs is not None else None
    while node is not None and len(out) < 16:
        out.append(node.container)
        node = node.next
    return out


def subscriber_sees_every_invalidation(sc, ex) -> None:
    """Per subscriber (KVM's, a second VM's, a device's): one registered from the start
    and never unregistered sees every invalidation issued on its mm -- its
    invalidate_range_start is called, and, when that start succeeded, its
    invalidate_range_end exactly once (the classic API calls every subscriber for every
    range).  A walk that stops early or skips a node mid-update shows here."""
    if ex.outcome != "done":
        return
    for mm in (getattr(sc, "mm", None),):
        if mm is None:
            continue
        for sub in subscribers(mm):
            if getattr(sub, "unregistering", False) or not getattr(sub, "at_setup", False):
                continue
            for n, rng in enumerate(getattr(mm, "invalidations", [])):
                if not rng.done:
                    continue
                starts = [ret for s, ret in rng.seen_start if s is sub]
                ends = sum(1 for s in rng.seen_end if s is sub)
                want_end = 1 if starts and starts[0] == 0 and sub.ops.invalidate_range_end \
                    else 0
                if len(starts) == 1 and ends == want_end:
                    continue
                what = ("never saw its start" if not starts else
                        f"saw its start {len(starts)} times" if len(starts) > 1 else
                        f"saw its end {ends} times (expected {want_end})")
                text = (f"kmodel invariant violated: subscriber-sees-every-invalidation\n"
                        f"  {sub.cname} (ops {sub.ops.name}), registered on {mm.cname} "
                        f"throughout, {what}\n  for invalidation #{n} [{rng.start:#x}, "
                        f"{rng.end:#x}) ({'blockable' if rng.blockable else 'non-blockable'})"
                        f": its secondary MMU may keep mapping pages that are freed, or "
                        f"its in-progress count stays raised.")
                fn = (sub.ops.invalidate_range_start.__name__ if not starts
                      else sub.ops.invalidate_range_end.__name__
                      if sub.ops.invalidate_range_end else "")
                ex.report(Report("invariant",
                                 f"kmodel invariant: {sub.ops.name} subscriber missed an "
                                 f"invalidation", "(end of run)", fn, [], text))
                return


def thread_group_outlives_vm(sc, ex) -> None:
    """A VM destroyed from a thread's exit (its files going with the last thread) leaves
    no other thread of that process that could still use the mm: in Linux the
    files_struct, which holds the VM fd, is put by the last thread of the group, after
    that thread's exit_mm -- every other thread has passed its exit_mm by then.  A
    destroy while a thread still has its mm means the process's threads do not share
    their files (or a design frees the VM under a live thread)."""
    kvm = getattr(sc, "kvm", None)
    ctx = getattr(kvm, "destroy_context", None)
    if ctx is None:
        return
    task, from_exit, others = ctx
    if not from_exit or not others:
        return
    ex.report(Report(
        "invariant", "kmodel invariant: kvm_destroy_vm from an exit while another thread "
        "still uses the mm", "(end of run)", "kvm_destroy_vm", [],
        f"kmodel invariant violated: thread-group-outlives-vm\n"
        f"  {task} ran kvm_destroy_vm from its do_exit while {', '.join(others)} of the "
        f"same process had not passed exit_mm\n"
        f"  (the VM fd lives in the files_struct every thread shares; it is put at the "
        f"last thread's exit)."))


def mm_freed_after_exit(sc, ex) -> None:
    """A process that has exited -- every thread past do_exit, so its mmput and the
    files' last fput (which destroys its VMs and their mmgrab) are done -- leaves its
    mm_struct freed (kernel/fork.c: the last mmdrop -> __mmdrop -> free_mm), but for the
    reference signal->oom_mm keeps when the OOM killer marked it (dropped with the
    signal_struct, when the zombie is reaped after the run).  Anything more is a
    reference nobody drops: kmemleak's report (kmemleak_check_mm)."""
    if ex.outcome != "done":
        return
    from ..linux.kernel.fork import kmemleak_check_mm
    for proc in (getattr(sc, "qemu", None), getattr(sc, "bash", None)):
        mm = getattr(proc, "mm", None)
        if mm is None or not proc.threads or \
                not all(getattr(t, "exited", False) for t in proc.threads):
            continue
        kmemleak_check_mm(ex, mm, f"every thread of {proc.name} has exited",
                          pinned=1 if proc.oom_mm is mm else 0)


PROPERTIES = [counters_balanced, vcpu_can_progress, no_spte_maps_freed_page,
              reaped_stays_reaped, subscriber_sees_every_invalidation,
              thread_group_outlives_vm, mm_freed_after_exit]
