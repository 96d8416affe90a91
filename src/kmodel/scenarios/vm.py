"""A QEMU process running a KVM guest, and the activities that can run against it.

Initial state (``VmScenario.build``): the process "qemu" with an mm of three anonymous
VMAs -- two back memslots 0 and 1 (guest memory), the third is QEMU's own heap -- every
page faulted in and mapped by the secondary MMU, KVM's notifier registered, and on x86 a
pfn cache (kvmclock) inside memslot 0.  With the knob populated=false the guest memory
is not faulted in yet (no PTE, no SPTE): the guest's first accesses fault.

Activities (each one task, named as ps would show it):
  vcpu      qemu-vcpu0   KVM_RUN: the guest touches gfn 0 and gfn 0x10
  vcpu-cow  qemu-vcpu0   KVM_RUN: a write to a page the guest only had read (a CoW fault
                         inside GUP, the path of Sean's 2026-02-11 trace)
  memslot   qemu-ioctl   KVM_SET_USER_MEMORY_REGION: delete memslot 1
  madvise   qemu-madvise madvise(MADV_DONTNEED) of memslot 1's memory
  munmap    qemu-munmap  munmap of memslot 1's memory
  reclaim   kswapd0      reclaim of one page of memslot 0 (no mmap_lock)
  oom       stress-ng    hits OOM and kills qemu; oom_reaper then reaps it
  mrelease  lmkd         kills qemu and calls process_mrelease() on it
  exit      qemu         the main thread exits (after SIGKILL when something kills it)
  vm-close  qemu         the main thread closes the VM fd (kvm_vm_release ->
                         kvm_destroy_vm) while the process lives on
  other-mm  stress-ng    OOM-kills "bash", a process with no notifiers (no KVM involved)
  vm2-close qemu-vm2     a second VM of qemu (its own struct kvm and notifier on the same
                         mm, memslot 0 over the first guest VMA, mapped) is closed and
                         destroyed
  gru       qemu-gru     a second, non-KVM secondary MMU: an SGI GRU context whose TLB maps
                         both guest VMAs; the device touches them (TLB miss -> dropin)

With vm2-close or gru the mm has two subscribers (three with both): the second VM or the
device is registered after KVM, so it heads the list.
"""

from __future__ import annotations

from ..linux.drivers.misc import sgi_gru
from ..linux.kernel.exit import do_exit
from ..linux.kernel.locking.spinlock import spinlock_t
from ..linux.kernel.sched import Blocked, current
from ..linux.mm import oom_kill
from ..linux.mm.madvise import do_vmi_align_munmap, madvise_dontneed, shrink_folio_list
from ..linux.mm.memory import alloc_page
from ..linux.mm.mm_types import VM_SHARED, mm_struct, vm_area_struct
from ..linux.virt.kvm import kvm_main
from ..linux.virt.kvm.kvm_host import kvm_create_vm, kvm_memory_slot
from ..linux.virt.kvm.kvm_vcpu import kvm_vcpu
from .base import KernelProgram
from .properties import PROPERTIES

ACTIVITIES = {
    "vcpu": "qemu-vcpu0: KVM_RUN, the guest touches gfn 0 and gfn 0x10",
    "vcpu-cow": "qemu-vcpu0: KVM_RUN, a guest write to a read-only (CoW) page",
    "memslot": "qemu-ioctl: KVM_SET_USER_MEMORY_REGION deletes memslot 1",
    "madvise": "qemu-madvise: madvise(MADV_DONTNEED) of memslot 1's memory",
    "munmap": "qemu-munmap: munmap of memslot 1's memory",
    "reclaim": "kswapd0: reclaims a page of memslot 0 without mmap_lock",
    "oom": "stress-ng: out_of_memory kills qemu; oom_reaper reaps it",
    "mrelease": "lmkd: kills qemu and calls process_mrelease() on it",
    "exit": "qemu: the main thread exits (on SIGKILL if something kills qemu)",
    "vm-close": "qemu: the main thread closes the VM fd; the last reference destroys the VM",
    "other-mm": "stress-ng: OOM-kills bash, a process with no mmu notifiers",
    "vm2-close": "qemu-vm2: a second VM on the same mm (two struct kvm) is closed and "
                 "destroyed",
    "gru": "qemu-gru: a non-KVM secondary MMU (SGI GRU TLB) maps guest memory and the "
           "device touches it",
}

VMA_GUEST0 = 0x100
VMA_GUEST1 = 0x200
VMA_HEAP = 0x300


class signal_struct:
    def __init__(self, name):
        self.name = name
        self.threads: list = []
        self.oom_mm = None
        self.exiting = False


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
        self.qemu = signal_struct("qemu")
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
            self.bash = signal_struct("bash")
            self.bash_mm = mm_struct("bash_mm")
            bvma = vm_area_struct(self.bash_mm, 0x100, 0x100 + n, (), "anon")
            for addr in range(bvma.vm_start, bvma.vm_end):
                bvma.ptes[addr] = alloc_page()
            self.bash_mm.vmas = [bvma]

    def _qemu_thread(self, ex, name: str, coro, files=()):
        ts = self.spawn(ex, name, coro).ctx
        ts.mm = self.mm
        ts.signal = self.qemu
        ts.alloc_lock = spinlock_t(f"&{name}->alloc_lock")
        ts.files = list(files)
        self.qemu.threads.append(ts)
        return ts

    def start(self, ex) -> None:
        from ..linux.kernel.core import Kernel
        self.kernel = Kernel(self.config, self.arch)
        self.ex = ex
        self.build()
        kvm = self.kvm
        threads = 0
        for act in self.activities:
            if act in ("vcpu", "vcpu-cow"):
                accesses = [(0x0, False), (0x10, act == "vcpu-cow")]
                vcpu = kvm_vcpu(kvm, len(self.vcpus), accesses)
                self.vcpus.append(vcpu)
                kvm.users_count += 1
                self._qemu_thread(ex, f"qemu-vcpu{vcpu.vcpu_id}", vcpu_thread(self, vcpu),
                                  files=[lambda: kvm_main.kvm_put_kvm(kvm)])
                threads += 1
            elif act == "memslot":
                self._qemu_thread(ex, "qemu-ioctl", memslot_thread(self))
                threads += 1
            elif act == "madvise":
                self._qemu_thread(ex, "qemu-madvise", madvise_thread(self))
                threads += 1
            elif act == "munmap":
                self._qemu_thread(ex, "qemu-munmap", munmap_thread(self))
                threads += 1
            elif act == "exit" and "vm-close" not in self.activities:
                self._qemu_thread(ex, "qemu", exit_thread(self),
                                  files=[lambda: kvm_main.kvm_put_kvm(kvm)])
                threads += 1
            elif act == "vm-close":
                # the main thread holds the VM fd; it closes it (and exits after, if the
                # scenario also has "exit")
                self._qemu_thread(ex, "qemu", vm_close_thread(self))
                threads += 1
            elif act == "reclaim":
                self.spawn(ex, "kswapd0", reclaim_thread(self), kthread=True)
            elif act == "oom":
                self.spawn(ex, "stress-ng", oom_thread(self, self.qemu))
                self.spawn(ex, "oom_reaper", oom_kill.oom_reaper(), kthread=True)
            elif act == "mrelease":
                self.spawn(ex, "lmkd", lmkd_thread(self))
            elif act == "vm2-close":
                self._qemu_thread(ex, "qemu-vm2", vm2_close_thread(self))
                threads += 1
            elif act == "gru":
                self._qemu_thread(ex, "qemu-gru", gru_thread(self))
                threads += 1
            elif act == "other-mm":
                task_struct_for(self, ex, "bash")
                self.spawn(ex, "stress-ng", oom_thread(self, self.bash))
                self.spawn(ex, "oom_reaper", oom_kill.oom_reaper(), kthread=True)
        if "exit" not in self.activities and "vm-close" not in self.activities:
            # The main thread sits in userspace holding the VM fd and its mm reference.
            main = _bystander(self, "qemu")
            main.files = []
        self.mm.mm_users = len(self.qemu.threads)

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


def _bystander(sc, name):
    """A qemu thread that takes no part in the run (it holds its references)."""
    from ..linux.kernel.sched import task_struct
    ts = task_struct(name, sc.kernel.alloc_pid(), -1)
    ts.mm = sc.mm
    ts.signal = sc.qemu
    ts.alloc_lock = spinlock_t(f"&{name}->alloc_lock")
    sc.qemu.threads.insert(0, ts)
    return ts


def task_struct_for(sc, ex, name):
    from ..linux.kernel.sched import task_struct
    ts = task_struct(name, sc.kernel.alloc_pid(), -1)
    ts.mm = sc.bash_mm
    ts.signal = sc.bash
    ts.alloc_lock = spinlock_t(f"&{name}->alloc_lock")
    sc.bash.threads.append(ts)
    return ts


# -- the tasks ---------------------------------------------------------------------------

async def _maybe_exit() -> None:
    """A qemu thread returning to userspace: if SIGKILL is pending it exits there."""
    if current().sigkill_pending:
        await do_exit(9)


async def vcpu_thread(sc, vcpu) -> None:
    from ..linux.virt.kvm.kvm_main import arch
    await arch().kvm_arch_vcpu_ioctl_run(vcpu)
    await _maybe_exit()


async def memslot_thread(sc) -> None:
    await kvm_main.kvm_vm_ioctl_set_memory_region(sc.kvm, 1, "DELETE")
    await _maybe_exit()


async def madvise_thread(sc) -> None:
    await madvise_dontneed(sc.mm, VMA_GUEST1, VMA_GUEST1 + sc.pages)
    await _maybe_exit()


async def munmap_thread(sc) -> None:
    await do_vmi_align_munmap(sc.mm, VMA_GUEST1, VMA_GUEST1 + sc.pages)
    await _maybe_exit()


async def exit_thread(sc) -> None:
    ts = current()
    if any(a in sc.activities for a in ("oom", "mrelease")):
        # qemu's main loop, in a killable sleep until the OOM killer's SIGKILL arrives
        await Blocked(ts, 0, "ppoll() [TASK_KILLABLE]", lambda: ts.sigkill_pending, "S")
    sc.qemu.exiting = True
    await do_exit(0)


async def vm_close_thread(sc) -> None:
    """close(vm_fd): the last reference to the VM file goes, so __fput (task_work, on the
    way back to userspace) calls kvm_vm_release; without vCPU fds that is the last
    kvm_put_kvm and the VM is destroyed while the mm lives on."""
    await kvm_main.kvm_vm_release(sc.kvm)
    if "exit" in sc.activities:
        await exit_thread(sc)
    else:
        await _maybe_exit()


async def vm2_close_thread(sc) -> None:
    """close() of the second VM's fd: kvm_vm_release -> kvm_destroy_vm unregisters its
    notifier while the first VM's stays."""
    await kvm_main.kvm_vm_release(sc.kvm2)
    await _maybe_exit()


async def gru_thread(sc) -> None:
    """GRU instructions on guest memory (a write to each guest VMA's first page)."""
    for addr in (VMA_GUEST0, VMA_GUEST1):
        await sgi_gru.gru_access(sc.gms, sc.mm, addr, True, "qemu-gru")
    await _maybe_exit()


async def reclaim_thread(sc) -> None:
    await shrink_folio_list(sc.vma0, VMA_GUEST0)


async def oom_thread(sc, victim_group) -> None:
    victim = victim_group.threads[0]
    await oom_kill.out_of_memory(victim)


async def lmkd_thread(sc) -> None:
    victim = sc.qemu.threads[0]
    await oom_kill.do_send_sig_info_sigkill(victim)
    await oom_kill.process_mrelease(victim)
