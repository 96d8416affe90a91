"""How each of the model's activities is performed on a real kernel.

One row per activity of ``kmodel.scenarios.vm``: the C enumerator in the reproducer, the
name the real thread or process takes (``prctl(PR_SET_NAME)``; it is the model's task
name wherever a user thread can bear it), the model's task name, and where it runs in
the reproducer.  ``what`` says in one line what the reproducer does for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..scenarios.vm import ACTIVITIES as MODEL_ACTIVITIES


@dataclass(frozen=True)
class RealActivity:
    name: str          # the model's activity name
    enum: str          # its C enumerator in the reproducer
    comm: str          # the real task's name (what the trace shows)
    task: str          # the model's task name
    where: str         # "thread" (a thread of qemu), "main" (qemu's main thread),
    #                    "process" (a process of its own)
    what: str


ACTIVITIES = {a.name: a for a in [
    RealActivity("vcpu", "A_VCPU", "qemu-vcpu0", "qemu-vcpu0", "thread",
                 "KVM_RUN of a real-mode guest that writes gfn 0 and gfn 0x10, then OUT "
                 "and HLT"),
    RealActivity("vcpu-cow", "A_VCPU_COW", "qemu-vcpu0", "qemu-vcpu0", "thread",
                 "the guest reads gfn 0x10, qemu forks (the page becomes copy-on-write), "
                 "then the guest writes it: the CoW break happens in KVM's GUP"),
    RealActivity("memslot", "A_MEMSLOT", "qemu-ioctl", "qemu-ioctl", "thread",
                 "KVM_SET_USER_MEMORY_REGION with memory_size 0: memslot 1 is deleted"),
    RealActivity("madvise", "A_MADVISE", "qemu-madvise", "qemu-madvise", "thread",
                 "madvise(MADV_DONTNEED) of memslot 1's memory"),
    RealActivity("munmap", "A_MUNMAP", "qemu-munmap", "qemu-munmap", "thread",
                 "munmap of memslot 1's memory"),
    # kswapd0 is a kernel thread: a user thread cannot be it.  MADV_PAGEOUT reaches the
    # same shrink_folio_list -> try_to_unmap_one path from the process itself (anonymous
    # pages only with swap: without it the folios are kept and nothing is unmapped).
    RealActivity("reclaim", "A_RECLAIM", "qemu-pageout", "kswapd0", "thread",
                 "madvise(MADV_PAGEOUT) of memslot 0's memory (reclaim of its pages)"),
    RealActivity("oom", "A_OOM", "stress-ng", "stress-ng", "process",
                 "charges the run's memory cgroup past its limit; the kernel's OOM killer "
                 "kills qemu (oom_score_adj 1000) and the oom_reaper reaps it"),
    RealActivity("mrelease", "A_MRELEASE", "lmkd", "lmkd", "process",
                 "pidfd_open(qemu), SIGKILL by pidfd_send_signal, process_mrelease(pidfd)"),
    RealActivity("exit", "A_EXIT", "qemu", "qemu", "main",
                 "qemu's main thread exits (or, with a killer, waits in pause() for the "
                 "SIGKILL)"),
    RealActivity("vm-close", "A_VM_CLOSE", "qemu", "qemu", "main",
                 "qemu closes the vCPU fd and then the VM fd: the last reference destroys "
                 "the VM"),
    RealActivity("other-mm", "A_OTHER_MM", "stress-ng", "stress-ng", "process",
                 "the OOM killer kills bash, a process with 16 MiB and no KVM"),
    RealActivity("vm2-close", "A_VM2_CLOSE", "qemu-vm2", "qemu-vm2", "thread",
                 "not reproduced yet: a second KVM_CREATE_VM on the same process, closed"),
    RealActivity("gru", "A_GRU", "qemu-gru", "qemu-gru", "thread",
                 "not reproducible: needs SGI UV GRU hardware"),
]}

# Activities the reproducer cannot perform (yet): a reproducer for them is bad input.
UNREPRODUCED = {"vm2-close": "the reproducer does not create a second VM yet",
                "gru": "it needs SGI UV GRU hardware (drivers/misc/sgi-gru)"}

assert list(ACTIVITIES) == list(MODEL_ACTIVITIES), "one row per model activity, same order"

# Message endpoints that are not activities: qemu itself, its frozen thread, bash.
PSEUDO = ("A_QEMU", "A_HOLD", "A_BASH")
PSEUDO_COMM = {"A_QEMU": "qemu", "A_HOLD": "qemu-hold", "A_BASH": "bash"}

KILLERS = ("oom", "mrelease")           # activities that kill qemu
KERNEL_TASKS = {"oom_reaper": "the kernel's oom_reaper thread"}


def comm_to_task(activities) -> dict[str, str]:
    """Real task name -> the model's task name, for a scenario's activities."""
    out = {ACTIVITIES[a].comm: ACTIVITIES[a].task for a in activities}
    if any(a in ("oom", "other-mm") for a in activities):
        out["oom_reaper"] = "oom_reaper"
    if "other-mm" in activities:
        out["bash"] = "bash"
    out.setdefault("qemu", "qemu")
    return out
