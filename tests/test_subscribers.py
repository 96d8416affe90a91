"""Issue 11 item 3: a second subscriber on the mm -- a second VM (two struct kvm on one
mm) and a non-KVM secondary MMU (the SGI GRU's TLB, drivers/misc/sgi-gru) -- and the
per-subscriber properties: every invalidation reaches every registered subscriber, start
and end paired, and no page is freed while any secondary MMU maps it."""

import subprocess
import sys
import textwrap

import pytest

from kmodel.api import CheckSpec, run_check


def check(patches, scenario, preset="nonrt", **config):
    return run_check(CheckSpec(patches=patches, preset=preset, arch="x86",
                               scenario=scenario, strategy="dpor", config=config))


def mutant(tmp_path, name, body):
    f = tmp_path / f"{name}.py"
    f.write_text(textwrap.dedent(f'''
        from kmodel.patching import Patch
        patch = Patch(name="{name}", title="a mutant", author="test", date="2026-12-03",
                      summary="a mutant")
    ''') + textwrap.dedent(body))
    return str(f)


@pytest.mark.parametrize("scenario", ["second-vm-vs-madvise", "gru-vs-madvise",
                                      "gru-oom", "second-vm-oom"])
def test_upstream_is_clean_with_a_second_subscriber(scenario):
    cr = check(["upstream"], scenario)
    assert cr.verdict == "clean" and cr.result.complete, scenario


def test_a_walk_cut_short_by_hlist_del_init_misses_the_first_vm(tmp_path):
    """An unregister that unhashes with hlist_del_init (next = NULL) instead of
    hlist_del_init_rcu: madvise's end walk, standing on the second VM's node, stops
    there, so the first VM never sees its range_start or range_end -- the per-subscriber property names
    it, and KVM's counters stay raised."""
    f = mutant(tmp_path, "unregister-del-init", '''
        from kmodel.linux.include.list import hlist_del_init, hlist_unhashed
        from kmodel.linux.include.sched_mm import mmdrop
        from kmodel.linux.kernel.locking.spinlock import spin_lock, spin_unlock
        from kmodel.linux.mm import mmu_notifier as mn

        @patch.override("mmu_notifier_unregister")
        async def mmu_notifier_unregister(sub, mm):
            sub.unregistering = True
            if not await hlist_unhashed(sub.hlist):
                idx = await mn.srcu_read_lock(mn.srcu())
                await sub.ops.release(sub, mm)
                await mn.srcu_read_unlock(mn.srcu(), idx)
                subs = mm.notifier_subscriptions
                await spin_lock(subs.lock)
                await hlist_del_init(sub.hlist)
                await spin_unlock(subs.lock)
            await mn.synchronize_srcu(mn.srcu())
            mmdrop(mm)
    ''')
    cr = check(["upstream", f], "second-vm-vs-madvise", KCSAN=False)
    missed = [r for r in cr.result.reports if r.kind == "invariant"
              and "subscriber missed an invalidation" in r.title]
    assert missed
    # the start walk or the end walk is the one cut short, depending on the interleaving
    assert {r.function for r in missed} == {"kvm_mmu_notifier_invalidate_range_start",
                                            "kvm_mmu_notifier_invalidate_range_end"}
    assert all("kvm->mmu_notifier (ops kvm_mmu_notifier_ops)" in r.text for r in missed)
    assert any("saw its end 0 times" in r.text for r in missed)
    assert any("never saw its start" in r.text for r in missed)
    uaf = [r for r in cr.result.reports if r.kind == "use-after-free"]
    assert any(r.task == "qemu-madvise" and r.function == "tlb_finish_mmu" for r in uaf)


def test_the_device_tlb_is_the_same_freed_page_oracle(tmp_path):
    """A GRU whose range_start does not flush its TLB: madvise frees a page the device
    still maps -- reported where the page is freed, naming the device."""
    f = mutant(tmp_path, "gru-no-flush", '''
        from kmodel.linux.include.rwonce import atomic_rmw

        @patch.override("gru_invalidate_range_start")
        async def gru_invalidate_range_start(sub, rng):
            await atomic_rmw(sub.owner, "ms_range_active", lambda v: v + 1, "atomic_inc")
            return 0
    ''')
    cr = check(["upstream", f], "gru-vs-madvise", KCSAN=False)
    (uaf,) = [r for r in cr.result.reports if r.kind == "use-after-free"]
    assert uaf.task == "qemu-madvise"
    assert uaf.function == "tlb_finish_mmu"
    assert "gru_mm_struct's secondary MMU still maps it" in uaf.text
    for fn in ("tlb_finish_mmu", "zap_page_range_single", "madvise_dontneed"):
        assert fn in uaf.trace


def test_the_device_is_walked_before_kvm_and_paired():
    """The GRU registers after KVM, so it heads the list: the reaper's non-blockable
    start reaches it first; upstream pairs every start with an end for both."""
    cr = check(["upstream"], "gru-oom")
    assert cr.verdict == "clean"
    assert cr.result.executions > 27           # oom alone: fewer interleavings


@pytest.mark.parametrize("act", ["gru2", "vm2close", "vm3-close"])
def test_bad_activity_names_are_one_line_and_exit_2(act):
    p = subprocess.run([sys.executable, "-m", "kmodel.cli", "check", "-s", f"oom,{act}",
                        "-q", "--no-cache"], capture_output=True, text=True)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and act in p.stderr


def test_no_reproducer_for_the_gru():
    from kmodel.realkernel.generate import ReproError, from_scenario
    with pytest.raises(ReproError, match="GRU hardware"):
        from_scenario("gru-oom")
