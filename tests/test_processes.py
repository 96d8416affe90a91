"""Processes, threads and file references (issues 16 and 11, item 1): the VM fd lives in
the files_struct the threads of qemu share, a syscall holds its file, and a fatal
signal or exit_group() takes every thread down.  Each test drives one execution in a
chosen order, or explores a composition, and asserts who ran which kernel function."""

from __future__ import annotations

import pytest

from kmodel.api import CheckSpec, run_check
from kmodel.engine import Limits, Strategy, run_execution
from kmodel.linux.config import PRESETS
from kmodel.scenarios.vm import VmScenario


class Scripted(Strategy):
    """Run ``script``'s task names first (each one step, skipped if not enabled), then
    always the first enabled task in ``order``."""

    def __init__(self, script, order):
        super().__init__()
        self.script = list(script)
        self.order = list(order)
        self.seen: dict[str, set] = {}

    def pick(self, ex, enabled):
        names = {t.name: t for t in enabled}
        while self.script:
            name = self.script.pop(0)
            if name in names:
                return names[name], ()
        for name in self.order:
            if name in names:
                return names[name], ()
        return enabled[0], ()

    def after_step(self, ex, task, used):
        self.seen.setdefault(task.name, set()).update(task.frames)


def run_one(activities, order, script=(), preset="nonrt"):
    d = Scripted(script, order)
    ex = run_execution(lambda: VmScenario(PRESETS[preset], "x86", list(activities), {}),
                       d, Limits())
    return ex, d.seen


def test_ioctl_after_close_fails_with_ebadf_and_never_reaches_kvm():
    ex, seen = run_one(["memslot", "vm-close"], ["qemu", "qemu-ioctl"])
    # close(vm_fd) drops the last reference: close() itself runs kvm_vm_release
    # (fput_close_sync), not task work
    assert {"sys_close", "fput_close_sync", "__fput", "kvm_vm_release",
            "kvm_destroy_vm"} <= seen["qemu"]
    # the ioctl's fdget finds no fd (-EBADF): KVM is never entered
    assert "fdget" in seen["qemu-ioctl"]
    assert not {"kvm_vm_ioctl", "kvm_swap_active_memslots"} & seen["qemu-ioctl"]
    assert ex.outcome == "done" and not ex.reports


def test_close_under_a_running_ioctl_defers_the_release_to_its_fdput():
    # qemu-ioctl takes its file reference (start, fdget) before qemu closes the fd
    ex, seen = run_one(["memslot", "vm-close"], ["qemu", "qemu-ioctl"],
                       script=["qemu-ioctl", "qemu-ioctl"])
    assert "sys_close" in seen["qemu"] and "kvm_destroy_vm" not in seen["qemu"]
    assert {"kvm_vm_ioctl", "kvm_swap_active_memslots", "fdput", "task_work_run",
            "kvm_vm_release", "kvm_destroy_vm"} <= seen["qemu-ioctl"]
    assert ex.outcome == "done" and not ex.reports


@pytest.mark.parametrize("other", ["exit", "vm-close"])
def test_memslot_with_exit_or_close_is_clean_on_upstream(other):
    # on the model with per-thread files this reported "slab-use-after-free: kvm used
    # after kfree" in kvm_swap_active_memslots (qemu-ioctl) and WARN_ON(rcuwait_active)
    # in kvm_destroy_vm (qemu)
    cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                             scenario=f"memslot,{other}", strategy="dpor"))
    assert cr.verdict == "clean" and cr.result.complete
    assert cr.result.executions >= 3


def test_exit_group_kills_every_thread_and_the_last_one_destroys_the_vm():
    ex, seen = run_one(["madvise", "exit"], ["qemu", "qemu-madvise"])
    assert {"do_group_exit", "zap_other_threads", "do_exit", "exit_mm",
            "put_files_struct"} <= seen["qemu"]
    assert "kvm_destroy_vm" not in seen["qemu"] and "close_files" not in seen["qemu"]
    # qemu-madvise finishes madvise, sees SIGKILL on its way out, and is the last
    # thread: exit_mmap (its mmput), then the files and the VM
    assert {"madvise_dontneed", "get_signal", "exit_mmap", "close_files",
            "kvm_vm_release", "kvm_destroy_vm"} <= seen["qemu-madvise"]
    assert ex.outcome == "done" and not ex.reports


def test_oom_kill_takes_down_a_thread_inside_madvise_only_after_it_returns():
    # issue 11: the main thread exits on the OOM kill while qemu-madvise is inside
    # madvise (it holds mmap_lock); the VM must outlive that thread
    ex, seen = run_one(["madvise", "oom", "exit"],
                       ["stress-ng", "qemu", "qemu-madvise", "oom_reaper"],
                       script=["qemu-madvise"] * 3)
    assert {"do_group_exit", "do_exit", "exit_mm"} <= seen["qemu"]
    assert "kvm_destroy_vm" not in seen["qemu"]
    assert {"madvise_dontneed", "exit_mm", "kvm_destroy_vm"} <= seen["qemu-madvise"]
    assert not ex.reports


def test_property_catches_a_vm_destroyed_under_a_live_thread(tmp_path):
    # per-thread files, as kmodel had them: the first thread to exit closes the VM fd
    patch = tmp_path / "per_thread_files.py"
    patch.write_text(
        "from kmodel.linux.fs.file import close_files\n"
        "from kmodel.patching import Patch\n"
        "patch = Patch(name='per-thread-files', title='t', author='a', date='2026-01-01')\n"
        "@patch.override('exit_files')\n"
        "async def exit_files(tsk):\n"
        "    files, tsk.files = tsk.files, None\n"
        "    await close_files(files)\n")
    cr = run_check(CheckSpec(patches=["upstream", str(patch)], preset="nonrt",
                             scenario="madvise,exit", strategy="dpor"))
    inv = [r for r in cr.result.reports if r.kind == "invariant"]
    assert inv and inv[0].function == "kvm_destroy_vm" and inv[0].task == "(end of run)"
    assert "thread-group-outlives-vm" in inv[0].text
    assert "qemu ran kvm_destroy_vm from its do_exit while qemu-madvise" in inv[0].text


def test_oom_kill_of_a_group_whose_leader_has_exited_skips_it():
    # lmkd's SIGKILL takes qemu down; the OOM killer then finds the leader past exit_mm:
    # task_will_free_mem is false without an mm (the model used to mmgrab(NULL) here)
    cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                             scenario="oom,mrelease,exit", strategy="bounded",
                             preemptions=1))
    assert not cr.result.reports and cr.result.executions > 10

