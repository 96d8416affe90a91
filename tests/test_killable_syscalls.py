"""Where the kernel waits killably on the paths the scenarios run (issue 12): munmap's
mmap_write_lock_killable (mm/vma.c __vm_munmap), kvm_vcpu_ioctl's
mutex_lock_killable(&vcpu->mutex) (virt/kvm/kvm_main.c); and the end-of-run kmemleak
check of an exited process's mm_struct (kernel/fork.c, mm/kmemleak.c)."""

from __future__ import annotations

from kmodel.api import CheckSpec, run_check
from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor
from kmodel.linux.config import PRESETS
from kmodel.linux.fs.ioctl import ksys_ioctl
from kmodel.linux.kernel.signal import SIGKILL, do_send_sig_info
from kmodel.linux.virt.kvm import kvm_main
from kmodel.scenarios.vm import VmScenario, back_to_userspace

EINTR = -4


class Seen(VmScenario):
    """A VM scenario that keeps, per execution, what each task's ops were (label and
    the modelled function that did them) and what the extra tasks returned."""

    seen: list

    def at_end(self, ex):
        super().at_end(ex)
        self.seen.append((list(ex.trace), list(getattr(self, "results", [])),
                          [r.kind for r in ex.reports]))


def explore(cls, activities, preset="nonrt", **knobs):
    seen: list = []

    def program():
        sc = cls(PRESETS[preset], "x86", list(activities), knobs)
        sc.seen = seen
        return sc
    res = Dpor().explore(program, Limits())
    return res, seen


def test_munmap_killed_while_waiting_for_mmap_lock_returns_eintr():
    # lmkd SIGKILLs qemu and takes mmap_read_lock_killable in process_mrelease;
    # qemu-munmap waiting for mmap_write_lock_killable behind it gives up (out_nolock)
    # and never unmaps -- unless the lock was handed to it first
    res, seen = explore(Seen, ["munmap", "mrelease"], heap=False, populated=False)
    assert res.complete and res.reports == []
    outcomes = set()
    for trace, _, _ in seen:
        mine = [(fn, label) for task, fn, label in trace if task == "qemu-munmap"]
        left = ("rwsem_down_write_slowpath",
                "rwsem_del_wake_waiter(&qemu_mm->mmap_lock) [out_nolock, wait_lock]") in mine
        unmapped = any(fn == "do_vmi_align_munmap" for fn, _ in mine)
        outcomes.add((left, unmapped))
    # gave up with -EINTR; unmapped without waiting (or woken by the grant); granted
    # while it was leaving (out_nolock keeps a lock handed over meanwhile)
    assert outcomes == {(True, False), (False, True), (True, True)}
    assert res.executions == 617


class SecondRunner(Seen):
    """A second thread of qemu issues KVM_RUN on the same vCPU fd (qemu does this only
    by mistake; the kernel serialises the two on vcpu->mutex), and a task of another
    process SIGKILLs qemu."""

    def start(self, ex):
        super().start(ex)
        self.results = []
        vcpu = self.vcpus[0]

        async def second_kvm_run():
            self.results.append(await ksys_ioctl(vcpu.fd, kvm_main.KVM_RUN))
            await back_to_userspace()

        async def kill_qemu():
            await do_send_sig_info(SIGKILL, self.qemu.threads[0])
        self.thread(ex, self.qemu, "qemu-vcpu0b", second_kvm_run())
        self.spawn(ex, "killer", kill_qemu())


def test_kvm_run_waits_for_vcpu_mutex_killably_and_a_sigkill_ends_it_with_eintr():
    res, seen = explore(SecondRunner, ["vcpu"])
    assert res.complete and res.reports == []
    results = {tuple(r) for _, r, _ in seen}
    # KVM_RUN after the first thread's (the guest leaves it on the fatal signal), or
    # -EINTR from mutex_lock_killable while the first thread is in the guest
    assert results == {(0,), (EINTR,)}
    for trace, r, _ in seen:
        mine = {fn for task, fn, _ in trace if task == "qemu-vcpu0b"}
        if r == [EINTR]:
            assert "__mutex_lock_killable_slowpath" in mine
            assert "kvm_arch_vcpu_ioctl_run" not in mine
    # the vCPU thread runs KVM_RUN under vcpu->mutex
    assert all(("qemu-vcpu0", "mutex_lock_killable", "mutex_lock_killable(&vcpu->mutex)") in t
               for t, _, _ in seen)


def test_mm_freed_after_exit_reports_a_leaked_mm_reference(tmp_path):
    # a design that forgets kvm_destroy_vm's mmdrop(mm): the exited process's mm_struct
    # is never freed, and the end-of-run kmemleak check says so
    import textwrap
    leak = textwrap.dedent('''
        from kmodel.engine import WRITE, Op
        from kmodel.linux.mm import mmu_notifier as mn
        from kmodel.linux.virt.kvm import kvm_main
        from kmodel.patching import Patch

        patch = Patch(name="leak-mm", title="test: kvm_destroy_vm forgets mmdrop(mm)")

        @patch.override("kvm_destroy_vm")
        async def kvm_destroy_vm(kvm):
            await mn.mmu_notifier_unregister(kvm.mmu_notifier, kvm.mm)
            await Op((kvm, "memslots"), WRITE, "kvm_free_memslots()")
            kvm.destroyed = True
            kvm_main.kvm_arch_free_vm(kvm)          # and no mmdrop(mm)
        ''')
    design = tmp_path / "leak_mm.py"
    design.write_text(leak)
    cr = run_check(CheckSpec(patches=[str(design)], preset="nonrt", scenario="vm-close,exit",
                             strategy="dpor"))
    kinds = [r.kind for r in cr.result.reports]
    assert kinds == ["memory-leak"]
    r = cr.result.reports[0]
    assert r.function == "kmemleak_check_mm" and r.task == "(end of run)"
    assert "unreferenced object qemu_mm" in r.text and "mm_count is 1" in r.text
    # upstream frees it
    up = run_check(CheckSpec(patches=["upstream"], preset="nonrt", scenario="vm-close,exit",
                             strategy="dpor"))
    assert up.verdict == "clean" and up.result.complete
    assert up.result.executions == cr.result.executions == 1
