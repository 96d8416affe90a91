"""A QEMU process running a KVM guest, and the activities that can run against it.

Initial state (``VmScenario.build``): the process "qemu" with an mm of three anonymous
VMAs -- two back memslots 0 and 1 (guest memory), the third is QEMU's own heap -- every
page faulted in and mapped by the secondary MMU, KVM's notifier registered, and on x86 a
pfn cache (kvmclock) inside memslot 0.  With the knob populated=false the guest memory
is not faulted in yet (no PTE, no SPTE): the guest's first accesses fault.

The process is a thread group, as in Linux: its threads share the mm, one files_struct
(CLONE_FILES) and the signal state.  The descriptor table holds the VM fd (the VM file
holds one kvm reference) and one fd per vCPU (each vCPU file holds another).  A syscall
on an fd holds the file for its duration (fdget/fdput); a SIGKILL or exit_group() takes
every thread down (each leaves at its next return to userspace); the files go with the
last thread's exit, after its exit_mm.  The main thread "qemu" is the group leader; it
is a task only in the activities that use it (exit, vm-close) -- otherwise it stays in
userspace for the whole run, holding its mm and files references.

Two more subscribers can join KVM's on the mm: vm2-close (a second VM of qemu, its own
struct kvm and notifier, memslot 0 over the first guest VMA, mapped; its fd is closed and
the VM destroyed) and gru (an SGI GRU context, a non-KVM secondary MMU whose TLB maps
both guest VMAs; the device touches them).  Registered after KVM, they head the list.

Each activity is registered once, below, with ``@activity``: its name, its summary and
the function that starts its task(s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..linux.drivers.misc import sgi_gru
from ..linux.fs.file import sys_close, file, files_struct
from ..linux.fs.ioctl import ksys_ioctl
from ..linux.kernel.entry import in_userspace, syscall_exit_to_user_mode
from ..linux.kernel.locking.spinlock import spinlock_t
from ..engine import READ
from ..linux.kernel.sched import Blocked, current, sigpending, task_struct
from ..linux.kernel.signal import SIGKILL, do_group_exit, do_send_sig_info, signal_struct
from ..linux.mm import oom_kill
from ..linux.mm.madvise import __vm_munmap, madvise_dontneed, shrink_folio_list
from ..linux.mm.memory import alloc_page
from ..linux.mm.mm_types import VM_SHARED, mm_struct, vm_area_struct
from ..linux.virt.kvm import kvm_main
from ..linux.virt.kvm.kvm_host import kvm_create_vm, kvm_memory_slot
from ..linux.virt.kvm.kvm_vcpu import kvm_vcpu
from .base import KernelProgram
from .properties import PROPERTIES


@dataclass(frozen=True)
class Activity:
    """One workload piece: ``start(sc, ex)`` spawns its task(s) on the built state."""
    name: str
    summary: str
    start: Callable


ACTIVITY: dict[str, Activity] = {}
ACTIVITIES: dict[str, str] = {}          # name -> summary (what kmodel list prints)


def activity(name: str, summary: str):
    """Register an activity; the order of registration is the order kmodel list shows."""
    def deco(start):
        ACTIVITY[name] = Activity(name, summary, start)
        ACTIVITIES[name] = summary
        return start
    return deco


VMA_GUEST0 = 0x100
VMA_GUEST1 = 0x200
VMA_HEAP = 0x300


class VmScenario(KernelProgram):
    """A composition of activities over the VM's initial state."""

    def __init__(self, config, arch: str, activities: list[str], knobs: dict):
        super().__init__(config, arch)
        unknown = [a for a in activities if a not in ACTIVITIES]
        if unknown:
            raise KeyError(unknown[0])
        self.activities = list(activities)
        self.knobs = dict(knobs)
        self.pages = int(self.knobs.get("pages", 1))

    # -- initial state -----------------------------------------------------------------

    def build(self) -> None:
        n = self.pages
        shared = not self.knobs.get("reap_hits_memslot", True)
        self.mm = mm = mm_struct("qemu_mm")
        guest_flags = {VM_SHARED} if shared else set()
        self.vma0 = vm_area_struct(mm, VMA_GUEST0, VMA_GUEST0 + n, guest_flags,
                                   "shmem" if shared else "anon")
        self.vma1 = vm_area_struct(mm, VMA_GUEST1, VMA_GUEST1 + n, guest_flags,
                                   "shmem" if shared else "anon")
        self.heap = vm_area_struct(mm, VMA_HEAP, VMA_HEAP + 1, (), "anon")
        mm.vmas = [self.vma0, self.vma1] + ([self.heap] if self.knobs.get("heap", True) else [])
        populated = self.knobs.get("populated", True)
        for vma in mm.vmas:
            if populated or vma is self.heap:
                for addr in range(vma.vm_start, vma.vm_end):
                    vma.ptes[addr] = alloc_page()
            vma.initial_pages = list(vma.ptes.values())
        if "vcpu-cow" in self.activities:
            self.vma1.cow = {VMA_GUEST1}
        self.slot0 = kvm_memory_slot(0, 0x0, n, VMA_GUEST0)
        self.slot1 = kvm_memory_slot(1, 0x10, n, VMA_GUEST1)
        self.kvm = kvm = kvm_create_vm(mm, [self.slot0, self.slot1], gpc_uhvas=[VMA_GUEST0])
        kvm.kvmclock = self.knobs.get("kvmclock", False)     # the guest uses kvmclock
        kvm_main.kvm_init_mmu_notifier(kvm)
        # the guest's memory is mapped by the secondary MMU before the run starts
        for slot, vma in ((self.slot0, self.vma0), (self.slot1, self.vma1)):
            for i in range(n if populated else 0):
                page = vma.ptes[vma.vm_start + i]
                if vma.vm_start + i in vma.cow:
                    continue                       # read-only in the guest: not mapped W
                kvm.arch.sptes[slot.base_gfn + i] = page
                page.spte_users.append((kvm, slot.base_gfn + i))
        self.kvm2 = self.gms = None
        if "vm2-close" in self.activities:
            # KVM_CREATE_VM a second time from the same process: a second subscriber
            self.kvm2 = kvm2 = kvm_create_vm(mm, [kvm_memory_slot(0, 0x0, n, VMA_GUEST0)])
            kvm2.cname = "kvm2"
            kvm_main.kvm_init_mmu_notifier(kvm2)
            for i in range(n if populated else 0):
                page = self.vma0.ptes[VMA_GUEST0 + i]
                kvm2.arch.sptes[i] = page
                page.spte_users.append((kvm2, i))
        if "gru" in self.activities:
            self.gms = sgi_gru.gru_register_mmu_notifier_at_setup(mm)
            for vma in (self.vma0, self.vma1):
                for addr, page in sorted(vma.ptes.items()):
                    sgi_gru.tlb_install(self.gms, addr, page)
        self.vcpus: list[kvm_vcpu] = []
        self.bash_mm = None
        if "other-mm" in self.activities:
            self.bash_mm = mm_struct("bash_mm")
            bvma = vm_area_struct(self.bash_mm, 0x100, 0x100 + n, (), "anon")
            for addr in range(bvma.vm_start, bvma.vm_end):
                bvma.ptes[addr] = alloc_page()
            self.bash_mm.vmas = [bvma]

    # -- the process and its threads ---------------------------------------------------

    def _process(self, name: str, mm) -> signal_struct:
        """A process over ``mm``: its signal_struct and its files_struct; the threads
        (``thread``) take their references on the mm, the files and the group."""
        sig = signal_struct(name)
        sig.mm = mm
        mm.mm_users = 0
        sig.files = files_struct(name)
        return sig

    def thread(self, ex, sig: signal_struct, name: str, coro=None, leader: bool = False):
        """A thread of process ``sig`` (CLONE_VM | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD):
        it shares the mm (mm_users), the files (files->count) and the signal state.
        Without ``coro`` it is not a task: it stays in userspace to the end of the run."""
        if coro is None:
            ts = task_struct(name, self.kernel.alloc_pid(), -1)
        else:
            ts = self.spawn(ex, name, coro).ctx
        ts.mm = sig.mm
        ts.signal = sig
        ts.files = sig.files
        ts.alloc_lock = spinlock_t(f"&{name}->alloc_lock")
        sig.files.count += 1
        sig.live += 1
        sig.mm.mm_users += 1
        if leader:
            sig.threads.insert(0, ts)
        else:
            sig.threads.append(ts)
        return ts

    def main_thread(self, ex) -> None:
        """The group leader "qemu" as a task (exit, vm-close; once for both)."""
        if not self.qemu.threads or self.qemu.threads[0].comm != "qemu":
            self.thread(ex, self.qemu, "qemu", main_thread(self), leader=True)

    def create_vcpu(self, accesses) -> kvm_vcpu:
        """KVM_CREATE_VCPU at setup: the vCPU file holds a kvm reference (kvm_get_kvm)
        and gets the next fd."""
        vcpu = kvm_vcpu(self.kvm, len(self.vcpus), accesses)
        self.vcpus.append(vcpu)
        kvm_main.kvm_get_kvm(self.kvm)
        vcpu.fd = VCPU_FD0 + vcpu.vcpu_id
        self.qemu.files.fd_install(vcpu.fd, file(f"kvm-vcpu:{vcpu.vcpu_id}",
                                                 kvm_main.kvm_vcpu_fops(), vcpu))
        return vcpu

    def start(self, ex) -> None:
        from ..linux.kernel.state import Kernel
        self.kernel = Kernel(self.config, self.arch)
        self.ex = ex
        self.build()
        self.qemu = self._process("qemu", self.mm)
        self.qemu.files.fd_install(VM_FD, file("kvm-vm", kvm_main.kvm_vm_fops(), self.kvm))
        if self.kvm2 is not None:
            self.qemu.files.fd_install(VM2_FD, file("kvm-vm2", kvm_main.kvm_vm_fops(),
                                                    self.kvm2))
        if not any(a in self.activities for a in MAIN_THREAD_ACTIVITIES):
            self.thread(ex, self.qemu, "qemu", leader=True)
        for act in self.activities:
            ACTIVITY[act].start(self, ex)

    # -- what must hold at the end --------------------------------------------------------

    def invariants(self):
        return PROPERTIES

    def measure(self, ex) -> None:
        super().measure(ex)
        if "oom" in self.activities or "mrelease" in self.activities:
            freed = sum(1 for vma in (self.vma0, self.vma1, self.heap)
                        for p in getattr(vma, "initial_pages", []) if p.freed)
            ex.metrics["victim_pages_freed"] = freed
            ex.metrics["victim_pages"] = sum(len(getattr(v, "initial_pages", []))
                                             for v in (self.vma0, self.vma1, self.heap))


VM_FD = 3
VCPU_FD0 = 4
VM2_FD = 16
MAIN_THREAD_ACTIVITIES = ("exit", "vm-close")


# -- the tasks ---------------------------------------------------------------------------

async def back_to_userspace() -> None:
    """The end of a syscall: syscall_exit_to_user_mode (task work, a fatal signal), then
    userspace, from which only a fatal signal brings the thread back (to exit)."""
    await syscall_exit_to_user_mode()
    await in_userspace()


async def vcpu_thread(sc, vcpu) -> None:
    await ksys_ioctl(vcpu.fd, kvm_main.KVM_RUN)
    await back_to_userspace()


async def memslot_thread(sc) -> None:
    await ksys_ioctl(VM_FD, kvm_main.KVM_SET_USER_MEMORY_REGION, (1, "DELETE"))
    await back_to_userspace()


async def madvise_thread(sc) -> None:
    await madvise_dontneed(sc.mm, VMA_GUEST1, VMA_GUEST1 + sc.pages)
    await back_to_userspace()


async def munmap_thread(sc) -> None:
    await __vm_munmap(sc.mm, VMA_GUEST1, VMA_GUEST1 + sc.pages)
    await back_to_userspace()


async def main_thread(sc) -> None:
    """qemu's main thread: with vm-close, close(vm_fd) (the VM file's last reference
    runs kvm_vm_release as task work on the way back); with exit, the process exits:
    after the killer's SIGKILL when something kills qemu (it sleeps in ppoll until
    then), else by exit_group()."""
    if "vm-close" in sc.activities:
        await sys_close(VM_FD)
        await syscall_exit_to_user_mode()
    if "exit" not in sc.activities:
        await in_userspace()
        return
    if any(a in sc.activities for a in KILLERS):
        await ppoll_until_signal()
        await syscall_exit_to_user_mode()      # get_signal -> do_group_exit(SIGKILL)
    else:
        await do_group_exit(0)                 # exit_group(0)


async def ppoll_until_signal() -> None:
    """qemu's main loop in ppoll(): fs/select.c do_poll -> poll_schedule_timeout sleeps
    in TASK_INTERRUPTIBLE, so a signal (here only SIGKILL) ends it with -EINTR.  The
    state change, the signal check and the sleep are one step: nothing else in the model
    reads this thread's state."""
    ts = current()
    await Blocked(sigpending(ts), READ, "ppoll() [TASK_INTERRUPTIBLE]",
                  lambda: ts.sigkill_pending, "S")


async def vm2_close_thread(sc) -> None:
    """close() of the second VM's fd: kvm_vm_release -> kvm_destroy_vm unregisters its
    notifier while the first VM's stays."""
    await sys_close(VM2_FD)
    await back_to_userspace()


async def gru_thread(sc) -> None:
    """GRU instructions on guest memory (a write to each guest VMA's first page)."""
    for addr in (VMA_GUEST0, VMA_GUEST1):
        await sgi_gru.gru_access(sc.gms, sc.mm, addr, True, "qemu-gru")
    await back_to_userspace()


async def reclaim_thread(sc) -> None:
    await shrink_folio_list(sc.vma0, VMA_GUEST0)


async def oom_thread(sc, victim_group) -> None:
    victim = victim_group.threads[0]
    await oom_kill.out_of_memory(victim)


async def lmkd_thread(sc) -> None:
    victim = sc.qemu.threads[0]
    await do_send_sig_info(SIGKILL, victim)
    await oom_kill.process_mrelease(victim)


KILLERS = ("oom", "mrelease")


# -- the activities, one place each ---------------------------------------------------------

@activity("vcpu", "qemu-vcpu0: KVM_RUN, the guest touches gfn 0 and gfn 0x10")
def _vcpu(sc, ex):
    vcpu = sc.create_vcpu([(0x0, False), (0x10, False)])
    sc.thread(ex, sc.qemu, f"qemu-vcpu{vcpu.vcpu_id}", vcpu_thread(sc, vcpu))


@activity("vcpu-cow", "qemu-vcpu0: KVM_RUN, a guest write to a read-only (CoW) page")
def _vcpu_cow(sc, ex):
    vcpu = sc.create_vcpu([(0x0, False), (0x10, True)])
    sc.thread(ex, sc.qemu, f"qemu-vcpu{vcpu.vcpu_id}", vcpu_thread(sc, vcpu))


@activity("memslot", "qemu-ioctl: KVM_SET_USER_MEMORY_REGION deletes memslot 1")
def _memslot(sc, ex):
    sc.thread(ex, sc.qemu, "qemu-ioctl", memslot_thread(sc))


@activity("madvise", "qemu-madvise: madvise(MADV_DONTNEED) of memslot 1's memory")
def _madvise(sc, ex):
    sc.thread(ex, sc.qemu, "qemu-madvise", madvise_thread(sc))


@activity("munmap", "qemu-munmap: munmap of memslot 1's memory")
def _munmap(sc, ex):
    sc.thread(ex, sc.qemu, "qemu-munmap", munmap_thread(sc))


@activity("reclaim", "kswapd0: reclaims a page of memslot 0 without mmap_lock")
def _reclaim(sc, ex):
    sc.spawn(ex, "kswapd0", reclaim_thread(sc), kthread=True)


@activity("oom", "stress-ng: out_of_memory kills qemu; oom_reaper reaps it")
def _oom(sc, ex):
    sc.spawn(ex, "stress-ng", oom_thread(sc, sc.qemu))
    sc.spawn(ex, "oom_reaper", oom_kill.oom_reaper(), kthread=True)


@activity("mrelease", "lmkd: kills qemu and calls process_mrelease() on it")
def _mrelease(sc, ex):
    sc.spawn(ex, "lmkd", lmkd_thread(sc))


@activity("exit", "qemu: the process exits: exit_group() from the main thread, or "
                  "SIGKILL if something kills qemu; every thread goes, the last one "
                  "closes the fds")
def _exit(sc, ex):
    sc.main_thread(ex)


@activity("vm-close", "qemu: the main thread closes the VM fd; the last reference "
                      "destroys the VM")
def _vm_close(sc, ex):
    sc.main_thread(ex)


@activity("other-mm", "stress-ng: OOM-kills bash, a process with no mmu notifiers")
def _other_mm(sc, ex):
    sc.bash = sc._process("bash", sc.bash_mm)
    sc.thread(ex, sc.bash, "bash", leader=True)
    sc.spawn(ex, "stress-ng", oom_thread(sc, sc.bash))
    sc.spawn(ex, "oom_reaper", oom_kill.oom_reaper(), kthread=True)


@activity("vm2-close", "qemu-vm2: a second VM on the same mm (two struct kvm) is closed and "
                       "destroyed")
def _vm2_close(sc, ex):
    sc.thread(ex, sc.qemu, "qemu-vm2", vm2_close_thread(sc))


@activity("gru", "qemu-gru: a non-KVM secondary MMU (SGI GRU TLB) maps guest memory and the "
                 "device touches it")
def _gru(sc, ex):
    sc.thread(ex, sc.qemu, "qemu-gru", gru_thread(sc))
