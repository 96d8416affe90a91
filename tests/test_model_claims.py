"""The thread's claims C1-C11, each reproduced from the model by exploration, and what the
model found beyond them (C12)."""

import pytest

from kmodel.api import CheckSpec, replay, run_check


def check(design, preset="rt", scenario="oom-reap", arch="x86", **kw):
    kw.setdefault("strategy", "dpor")
    return run_check(CheckSpec(patches=[design], preset=preset, arch=arch,
                               scenario=scenario, **kw))


def of_kind(cr, kind):
    return [r for r in cr.result.reports if r.kind == kind]


# C1 ---------------------------------------------------------------------------------

def test_c1_upstream_rt_reaper_splats_in_kvm_range_start():
    cr = check("upstream", "rt")
    (splat,) = of_kind(cr, "sleep-in-atomic")
    assert splat.task == "oom_reaper"
    assert splat.function == "kvm_mmu_notifier_invalidate_range_start"
    for fn in ("rt_spin_lock", "kvm_mmu_notifier_invalidate_range_start",
               "mn_hlist_invalidate_range_start", "__mmu_notifier_invalidate_range_start",
               "mmu_notifier_invalidate_range_start_nonblock", "__oom_reap_task_mm",
               "oom_reaper"):
        assert fn in splat.trace
    assert "non_block: 1" in splat.text and "name: oom_reaper" in splat.text
    assert "(&kvm->mn_invalidate_lock)" in splat.text        # the lock it was taking
    assert cr.result.complete


@pytest.mark.parametrize("arch", ["x86", "arm64"])
def test_c1_upstream_nonrt_has_no_splat(arch):
    cr = check("upstream", "nonrt", arch=arch)
    assert cr.verdict == "clean" and cr.result.complete
    assert cr.result.executions == cr.result.classes


# C2 ---------------------------------------------------------------------------------

def test_c2_v1_x86_first_sleeping_lock_is_the_pfn_cache_lock():
    cr = check("v1-raw-mn-lock", "rt", arch="x86")
    (splat,) = of_kind(cr, "sleep-in-atomic")
    assert splat.function == "gfn_to_pfn_cache_invalidate_start"
    assert splat.trace[1] == "rt_spin_lock"
    assert "(&kvm->gpc_lock)" in splat.text


def test_c2_v1_arm64_splats_on_mmu_lock_only_when_a_memslot_is_hit():
    cr = check("v1-raw-mn-lock", "rt", arch="arm64")
    (splat,) = of_kind(cr, "sleep-in-atomic")
    assert splat.function == "kvm_mmu_notifier_invalidate_range_start"
    assert splat.trace[1] == "rt_write_lock"
    assert "spinlock_rt.c:241" in splat.text
    miss = check("v1-raw-mn-lock", "rt", scenario="oom-reap-nomemslot", arch="arm64")
    assert miss.verdict == "clean" and miss.result.complete
    miss_x86 = check("v1-raw-mn-lock", "rt", scenario="oom-reap-nomemslot", arch="x86")
    assert [r.function for r in of_kind(miss_x86, "sleep-in-atomic")] == \
        ["gfn_to_pfn_cache_invalidate_start"]


# C3 ---------------------------------------------------------------------------------

def test_c3_forced_nonblock_cow_fault_in_vcpu_has_seans_trace():
    cr = check("upstream", "rt", scenario="cow-fault-hack")
    (splat,) = of_kind(cr, "sleep-in-atomic")
    assert splat.task == "qemu-vcpu0"
    assert splat.trace[:3] == ["__might_resched", "rt_write_lock",
                               "kvm_mmu_notifier_invalidate_range_start"]
    for fn in ("do_wp_page", "handle_mm_fault", "__get_user_pages",
               "get_user_pages_unlocked", "hva_to_pfn", "kvm_mmu_faultin_pfn",
               "kvm_tdp_page_fault", "kvm_mmu_page_fault", "vmx_handle_exit",
               "kvm_arch_vcpu_ioctl_run"):
        assert fn in splat.trace
    assert "non_block: 1" in splat.text and "name: qemu-vcpu0" in splat.text


# C4 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["rt", "nonrt"])
def test_c4_atomic_count_unbalances_in_progress_across_a_memslot_swap(preset):
    cr = check("atomic-count", preset, scenario="memslot-vs-madvise")
    (inv,) = of_kind(cr, "invariant")
    assert "mmu_invalidate_in_progress left raised" in inv.title
    assert "kvm->mmu_invalidate_in_progress = 1" in inv.text
    assert cr.result.complete
    # the schedule replays to the same finding
    again = replay(cr.replay_record(inv))
    assert [r.title for r in again.result.reports] == [inv.title]
    upstream = check("upstream", preset, scenario="memslot-vs-madvise")
    assert upstream.verdict == "clean" and upstream.result.complete


# C5 ---------------------------------------------------------------------------------

def test_c5_deferring_the_oom_invalidation_frees_pages_the_guest_still_maps():
    cr = check("defer-invalidation", "nonrt", strategy="default", stop_on_first=True)
    uaf = of_kind(cr, "use-after-free")
    assert uaf and uaf[0].task == "oom_reaper" and uaf[0].function == "tlb_finish_mmu"
    assert "secondary MMU still maps it" in uaf[0].text


# C6 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["rt", "nonrt"])
def test_c6_oom_enter_unregister_recursive_srcu_and_real_deadlock(preset):
    cr = check("oom-enter-unregister", preset)
    (rec,) = of_kind(cr, "lockdep-recursive")
    assert rec.function == "__synchronize_srcu"
    assert "already holding lock:\n(srcu){.+.+}-{0:0}, at: __mmu_notifier_oom_enter" in \
        rec.text
    (hung,) = of_kind(cr, "hung-task")
    assert hung.task == "stress-ng" and "__synchronize_srcu" in hung.trace
    # and it is called under task_lock: synchronize_srcu may not sleep there either
    assert [r.function for r in of_kind(cr, "sleep-in-atomic")] == ["__synchronize_srcu"]


# C7 ---------------------------------------------------------------------------------

def test_c7_deferred_detach_still_lets_the_reaper_reach_kvm_on_rt():
    cr = check("oom-enter-deferred-detach", "rt", strategy="default", stop_on_first=True)
    (splat,) = of_kind(cr, "sleep-in-atomic")
    assert splat.task == "oom_reaper"
    assert splat.function == "kvm_mmu_notifier_invalidate_range_start"


# C8 / C9 ------------------------------------------------------------------------------

@pytest.mark.parametrize("design", ["after-oom-unregister-sync", "v2-call-srcu"])
def test_c8_c9_verdicts_are_backed_by_replayable_schedules(design):
    cr = check(design, "nonrt", strategy="default", stop_on_first=True)
    assert cr.verdict == "reports"
    first = cr.result.reports[0]
    again = replay(cr.replay_record(first))
    assert any(r.kind == first.kind and r.function == first.function and r.text == first.text
               for r in again.result.reports)


def test_c8_paolo_sketch_synchronize_srcu_under_task_lock():
    cr = check("after-oom-unregister-sync", "nonrt")
    splats = of_kind(cr, "sleep-in-atomic")
    assert splats and splats[0].function == "__synchronize_srcu"
    assert "mmu_notifier_oom_enter" in splats[0].trace
    assert "__oom_kill_process" in splats[0].trace
    assert "in_atomic(): 1" in splats[0].text


def test_c9_v2_frees_a_page_a_vcpu_mapped_after_release():
    cr = check("v2-call-srcu", "nonrt")
    kinds = {r.kind for r in cr.result.reports}
    assert "use-after-free" in kinds
    assert "sleep-in-atomic" not in kinds and "lockdep-recursive" not in kinds
    assert cr.result.complete


# C10 -------------------------------------------------------------------------------

def test_c10_v2_does_not_build_without_mmu_notifier():
    cr = run_check(CheckSpec(patches=["v2-call-srcu"], preset="rt",
                             config={"MMU_NOTIFIER": False}, scenario="other-mm"))
    assert cr.verdict == "build-error"
    assert cr.result.executions == 0
    (err,) = cr.build_errors
    assert err.startswith("mm/oom_kill.c:")
    assert "implicit declaration of function 'mmu_notifier_oom_enter'" in err


def test_c10_paolos_sketch_has_a_stub_and_builds():
    from kmodel.patching import build_errors, load
    from kmodel.linux.config import PRESETS
    cfg = PRESETS["rt"].set("MMU_NOTIFIER", False)
    assert build_errors([load("after-oom-unregister-sync")], cfg) == []
    assert build_errors([load("v2-call-srcu")], PRESETS["rt"]) == []


# C11 -------------------------------------------------------------------------------

def test_c11_raw_mmu_lock_has_no_splat_but_longer_nonpreemptible_sections():
    cr = check("raw-mmu-lock", "rt")
    assert cr.verdict == "clean" and cr.result.complete
    lengths = []
    for pages in (8, 16):
        res = check("raw-mmu-lock", "rt", scenario="oom-reap-nomemslot",
                    knobs={"pages": pages, "reap_hits_memslot": True})
        assert res.verdict == "clean"
        lengths.append(res.result.metrics["longest_nonpreemptible_steps"][1])
        assert res.result.metrics["victim_pages_freed"][0] == 2 * pages + 1
    assert lengths == [10, 18]         # grows with the guest memory zapped under mmu_lock
    upstream_rt = check("upstream", "rt", scenario="oom-reap-nomemslot",
                        knobs={"pages": 16})
    assert upstream_rt.result.metrics["longest_nonpreemptible_steps"][1] == 0


# C12 (found by the model, not in the thread) -----------------------------------------

@pytest.mark.parametrize("preset", ["rt", "nonrt"])
def test_c12_v2_callback_runs_on_a_vm_freed_by_a_concurrent_close(preset):
    """kvm_destroy_vm tests hlist_unhashed() before mmu_notifier_oom_enter unhashes KVM,
    takes the unregister branch (no mmu_notifier_barrier), and synchronize_srcu does not
    wait for the call_srcu callback queued meanwhile: the callback reads a freed kvm."""
    cr = check("v2-call-srcu", preset, scenario="oom-vm-close")
    assert cr.result.complete
    (uaf,) = [r for r in of_kind(cr, "use-after-free")
              if r.function == "kvm_mmu_notifier_after_oom_unregister"]
    assert uaf.trace[:2] == ["kvm_mmu_notifier_after_oom_unregister",
                             "mmu_notifier_oom_callback_fn"]
    assert "BUG: KASAN: slab-use-after-free" in uaf.text
    freed_by = uaf.text.split("Freed by task", 1)[1]
    assert "kvm_destroy_vm" in freed_by and "kvm_vm_release" in freed_by
    again = replay(cr.replay_record(uaf))
    assert uaf.text in [r.text for r in again.result.reports]
    assert check("upstream", "nonrt", scenario="oom-vm-close").verdict == "clean"
