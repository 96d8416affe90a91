"""The conformance machinery without a kernel: parsing a trace, aligning a model chain
with a kernel stack, and the table."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from kmodel.realkernel import conform, generate, tracing

TRACE = """\
# tracer: nop
    kmodel-repro-10    [000] .....   1.0: tracing_mark_write: kmodel-repro: try 1 go mrelease
            lmkd-11    [000] .....   1.1: kvm_unmap_hva_range: mmu notifier unmap range: 0x1 -- 0x2
      qemu-vcpu0-12    [001] .....   1.1: kvm_unmap_hva_range: mmu notifier unmap range: 0x3 -- 0x4
            lmkd-11    [000] .....   1.2: <stack trace>
 => trace_event_raw_event_kvm_unmap_hva_range
 => kvm_mmu_notifier_invalidate_range_start
 => __mmu_notifier_invalidate_range_start
 => __oom_reap_task_mm
 => __do_sys_process_mrelease
 => do_syscall_64
      qemu-vcpu0-12    [001] .....   1.2: <stack trace>
 => trace_event_raw_event_kvm_unmap_hva_range
 => kvm_mmu_notifier_invalidate_range_start
    kmodel-repro-10    [000] .....   1.3: tracing_mark_write: kmodel-repro: try 1 end
            lmkd-11    [000] .....   1.4: kvm_unmap_hva_range: mmu notifier unmap range: 0x5 -- 0x6
"""


def test_parse_pairs_each_stack_with_its_event_by_pid_and_keeps_the_marked_window():
    evs = tracing.parse(TRACE, start_marker="go ", end_marker=" end")
    assert [(e.task, e.pid) for e in evs] == [("lmkd", 11), ("qemu-vcpu0", 12)]
    assert evs[0].stack == ["kvm_mmu_notifier_invalidate_range_start",
                            "__mmu_notifier_invalidate_range_start", "__oom_reap_task_mm",
                            "__do_sys_process_mrelease", "do_syscall_64"]
    assert evs[1].stack == ["kvm_mmu_notifier_invalidate_range_start"]


def test_align_inlined_alias_and_missing():
    chain = ["process_mrelease", "__oom_reap_task_mm",
             "mmu_notifier_invalidate_range_start_nonblock",
             "__mmu_notifier_invalidate_range_start", "kvm_mmu_notifier_invalidate_range_start"]
    kstack = ["do_syscall_64", "__do_sys_process_mrelease", "__oom_reap_task_mm",
              "__mmu_notifier_invalidate_range_start.isra.0",
              "kvm_mmu_notifier_invalidate_range_start"]
    ksyms = {"__oom_reap_task_mm", "__mmu_notifier_invalidate_range_start",
             "kvm_mmu_notifier_invalidate_range_start", "__do_sys_process_mrelease"}
    lines, missing = conform.align(chain, kstack, ksyms)
    assert missing == []
    notes = {m: n for m, _k, n in lines if m}
    assert notes["process_mrelease"].startswith("alias: SYSCALL_DEFINE2")
    assert notes["mmu_notifier_invalidate_range_start_nonblock"].startswith("inlined")
    assert notes["__oom_reap_task_mm"] == "same"
    assert ("", "do_syscall_64", "kernel only") in lines
    # the same chain against a stack without the reaper: it is missing, not inlined
    _lines, missing = conform.align(chain, kstack[:2] + kstack[3:], ksyms)
    assert missing == ["__oom_reap_task_mm"]


def test_compare_rows_and_render():
    evs = tracing.parse(TRACE, start_marker="go ", end_marker=" end")
    chains = {"lmkd": {("process_mrelease", "__oom_reap_task_mm",
                        "__mmu_notifier_invalidate_range_start",
                        "kvm_mmu_notifier_invalidate_range_start")}}
    rows = conform.compare(evs, chains, {"lmkd": "lmkd", "qemu-vcpu0": "qemu-vcpu0"},
                           {"__oom_reap_task_mm"}, {11: "lmkd", 12: "qemu-vcpu0"})
    by = {r.path: r.agreement for r in rows}
    assert by == {"lmkd kvm_unmap_hva_range": "yes",
                  "qemu-vcpu0 kvm_unmap_hva_range": "not in the model"}
    text = conform.render(rows)
    assert text.splitlines()[0].split() == ["path", "in", "the", "model", "in", "the",
                                            "kernel", "agreement"]
    assert "__do_sys_process_mrelease" in text


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("gcc") is None
                    or shutil.which("setpriv") is None,
                    reason="needs root (to drop to nobody), gcc and setpriv")
def test_reproducer_says_what_stops_it_and_exits_2(tmp_path):
    src, line = generate.write(generate.from_scenario("mrelease"), tmp_path)
    subprocess.run(line.split(), check=True)
    os.chmod(tmp_path, 0o755)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(tmp_path / "repro")], capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stdout.strip().startswith("kmodel-repro: cannot run: /dev/kvm:")
    assert p.stdout.count("\n") == 1


KMSG = [
    "BUG: sleeping function called from invalid context at kernel/locking/spinlock_rt.c:48",
    "in_atomic(): 0, irqs_disabled(): 0, non_block: 1, pid: 812, name: lmkd",
    "Call Trace:",
    " <TASK>",
    " dump_stack_lvl+0x4d/0x70",
    " __might_resched+0x17f/0x1c0",
    " rt_spin_lock+0x2d/0xb0",
    " ? kvm_unrelated+0x10/0x20",
    " kvm_mmu_notifier_invalidate_range_start+0x5a/0x3c0",
    " __mmu_notifier_invalidate_range_start+0x1a6/0x260",
    " __oom_reap_task_mm+0x1b4/0x1f0",
    " __do_sys_process_mrelease+0x187/0x240",
    " do_syscall_64+0x5b/0x170",
    " </TASK>",
]


def test_a_kernel_splat_is_read_and_compared_with_the_models():
    (first, trace), = conform.splat_traces(KMSG)
    assert first.startswith("BUG: sleeping function called from invalid context")
    assert trace[:3] == ["dump_stack_lvl", "__might_resched", "rt_spin_lock"]
    assert "kvm_unrelated" not in trace          # "? " frames are unreliable
    model = ["__might_resched", "rt_spin_lock", "kvm_mmu_notifier_invalidate_range_start",
             "mn_hlist_invalidate_range_start", "__mmu_notifier_invalidate_range_start",
             "mmu_notifier_invalidate_range_start_nonblock", "__oom_reap_task_mm",
             "process_mrelease"]
    ksyms = set(trace) | {"__might_resched", "rt_spin_lock"}
    _lines, missing = conform.compare_splat(model, trace, ksyms)
    assert missing == []
    _lines, missing = conform.compare_splat(model, [f for f in trace if f != "rt_spin_lock"],
                                            ksyms)
    assert missing == ["rt_spin_lock"]
