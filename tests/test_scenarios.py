"""Scenario composition and knobs."""

import pytest

from kmodel import scenarios
from kmodel.api import BadInput, CheckSpec, run_check


def test_unknown_knob_is_bad_input_with_a_hint():
    with pytest.raises(BadInput, match=r"unknown knob 'pagez' \(did you mean pages\?\)"):
        run_check(CheckSpec(scenario="oom-reap", knobs={"pagez": 2}))
    with pytest.raises(BadInput, match="whole number"):
        run_check(CheckSpec(scenario="oom-reap", knobs={"pages": 0}))


def test_activities_compose_on_the_command_line():
    sdef = scenarios.resolve("oom,vcpu")
    assert sdef.activities == ("oom", "vcpu")
    with pytest.raises(KeyError, match="did you mean"):
        scenarios.resolve("oom,vcpuu")


def test_pages_knob_scales_the_victim_and_the_reaper_frees_all_of_it():
    for pages in (1, 3):
        cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                                 scenario="oom-reap-nomemslot", strategy="dpor",
                                 knobs={"pages": pages, "reap_hits_memslot": True}))
        assert cr.verdict == "clean" and cr.result.complete
        assert cr.result.metrics["victim_pages"] == [2 * pages + 1, 2 * pages + 1]
        assert cr.result.metrics["victim_pages_freed"] == [2 * pages + 1, 2 * pages + 1]


def test_shared_guest_memory_is_skipped_by_the_reaper():
    cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                             scenario="oom-reap-nomemslot", strategy="dpor"))
    # only QEMU's private heap page is reaped; the two shared guest VMAs are skipped
    assert cr.result.metrics["victim_pages_freed"] == [1, 1]


# -- the scenarios added for the mutation survivors (tools/mutate.py) ------------------

import os  # noqa: E402
import sys  # noqa: E402

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools")


def _mutants():
    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    import mutants
    return mutants


def _check(scenario, preset="nonrt", mutant=None, **kw):
    spec = CheckSpec(patches=["upstream"], preset=preset, scenario=scenario,
                     strategy="dpor", **kw)
    if mutant is None:
        return run_check(spec).result
    m = _mutants()
    with m.mutated(m.MUTANTS[mutant]):
        return run_check(spec).result


def _keys(result):
    return {(r.kind, r.function) for r in result.reports}


@pytest.mark.parametrize("scenario", ["oom-fault", "oom-vm-close"])
def test_new_scenarios_are_small_and_clean_on_upstream(scenario):
    nonrt = _check(scenario)
    assert nonrt.complete and nonrt.executions < 1000 and not nonrt.reports
    rt = _check(scenario, "rt")
    # on PREEMPT_RT only the thread's own splat: the reaper's non-blockable start
    assert rt.complete and _keys(rt) == {
        ("sleep-in-atomic", "kvm_mmu_notifier_invalidate_range_start")}


def test_oom_fault_a_fault_that_ignores_mmf_unstable_repopulates_a_reaped_mm():
    r = _check("oom-fault", mutant="fault-no-MMF_UNSTABLE")
    inv = [x for x in r.reports if x.kind == "invariant"]
    assert [(x.function, x.title) for x in inv] == [
        ("__handle_mm_fault", "kmodel invariant: a reaped mm regained a page")]
    assert "reaped-stays-reaped" in inv[0].text and "qemu_mm is MMF_UNSTABLE" in inv[0].text


@pytest.mark.parametrize("mutant", ["x86-fault-check-outside-lock",
                                    "mmu_lock-read-for-write"])
def test_oom_fault_a_fault_racing_the_reap_maps_a_page_the_reaper_frees(mutant):
    # the vCPU's first fault passes its retry check, the reaper's start (zapping nothing
    # yet) slips in before the map, and the page is freed while the new SPTE maps it
    r = _check("oom-fault", mutant=mutant)
    uaf = {(x.task, x.function) for x in r.reports if x.kind == "use-after-free"}
    assert ("qemu-vcpu0", "kvm_tdp_page_fault") in uaf
    assert ("oom_reaper", "tlb_finish_mmu") in uaf


def test_oom_vm_close_unregister_without_synchronize_srcu_frees_kvm_under_a_callback():
    r = _check("oom-vm-close", mutant="unregister-no-synchronize_srcu")
    uaf = [x for x in r.reports if x.kind == "use-after-free"]
    # the callbacks touch the freed kvm; the SRCU walk standing on KVM's subscription
    # (embedded in struct kvm) reads its hlist.next from freed memory too
    assert uaf and {x.title for x in uaf} <= {
        "slab-use-after-free: kvm used after kfree",
        "slab-use-after-free: kvm->mmu_notifier.hlist used after kfree"}
    assert {x.function for x in uaf} <= {"kvm_mmu_notifier_invalidate_range_start",
                                         "kvm_mmu_notifier_invalidate_range_end",
                                         "mn_hlist_invalidate_range_start"}
    assert all(x.task == "oom_reaper" for x in uaf)
    text = uaf[0].text
    assert "BUG: KASAN: slab-use-after-free in kvm_mmu_notifier_invalidate_range_" in text
    assert "Freed by task qemu/" in text and "kvm_destroy_vm" in text \
        and "kvm_vm_release" in text


def test_vm_close_composes_with_madvise_and_release_without_synchronize_is_equivalent():
    # the activity on its own terms: close the VM fd while madvise invalidates
    assert not _check("vm-close,madvise").reports
    killed = _check("vm-close,madvise", mutant="unregister-no-synchronize_srcu")
    assert ("use-after-free", "kvm_mmu_notifier_invalidate_range_start") in _keys(killed)
    # mn_hlist_release's synchronize_srcu guards a concurrent ->release, which KVM's
    # mmu_lock already serialises: an equivalent mutant (tools/mutate.py SURVIVOR_NOTES)
    assert not _check("oom-vm-close", mutant="release-no-synchronize_srcu").reports


def test_a_memslot_walk_outside_kvm_srcu_is_suspicious_rcu_usage():
    r = _check("memslot-vs-madvise", mutant="hva-range-no-srcu")
    warn = [x for x in r.reports if x.kind == "warn"]
    assert [(x.function, x.title) for x in warn] == [
        ("kvm_mmu_notifier_invalidate_range_start",
         "WARNING: suspicious RCU usage: include/linux/kvm_host.h: "
         "suspicious rcu_dereference_check() usage")]
    assert "suspicious rcu_dereference_check() usage!" in warn[0].text
    assert "(srcu){.+.+}" in warn[0].text        # held: the mmu_notifier srcu, not kvm's


def test_mutate_counts_losing_the_threads_splat_as_a_kill():
    _mutants()
    import mutate
    cell = ("rt", "oom-reap")
    upstream = _check("oom-reap", "rt")
    assert mutate.lost_expected(cell, {x.key() for x in upstream.reports}) == []
    blockable = _check("oom-reap", "rt", mutant="reap-blockable")
    assert blockable.complete and not blockable.reports
    assert mutate.lost_expected(cell, {x.key() for x in blockable.reports}) == [
        ("lost sleep-in-atomic", "kvm_mmu_notifier_invalidate_range_start",
         "expected report missing")]
