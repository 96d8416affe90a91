"""Issue 11 item 4: the kvmclock gfn_to_pfn_cache in use.  The vCPU publishes kvmclock
through the cache (read_lock(&gpc->lock); kvm_gpc_check; on failure kvm_gpc_refresh and
retry), and a read through a cache left valid over a freed page is a use-after-free."""

import textwrap

from kmodel.api import CheckSpec, run_check


def check(design, scenario="oom-reap", preset="nonrt", **knobs):
    return run_check(CheckSpec(patches=[design], preset=preset, arch="x86",
                               scenario=scenario, strategy="dpor",
                               knobs={"kvmclock": True, **knobs}))


def uafs_in(cr, fn):
    return [r for r in cr.result.reports if r.kind == "use-after-free" and r.function == fn]


def test_upstream_invalidates_the_cache_before_the_page_goes():
    """Upstream: the reaper's range_start clears gpc->valid before the page is freed, so
    no read through the cache reaches a freed page; the refresh's retry check reads
    mn_active_invalidate_count outside any lock, which KCSAN sees racing the callbacks'
    count updates (the kernel reads it plainly too)."""
    cr = check("upstream")
    assert cr.result.complete
    assert not [r for r in cr.result.reports if r.kind == "use-after-free"]
    kinds = {(r.kind, r.task) for r in cr.result.reports}
    assert kinds == {("data-race", "qemu-vcpu0"), ("data-race", "oom_reaper")}
    for r in cr.result.reports:
        assert "hva_to_pfn_retry" in r.title
        assert "kvm_mmu_notifier_invalidate_range_end" in r.title
    (vcpu_side,) = [r for r in cr.result.reports if r.task == "qemu-vcpu0"]
    # the check failed (the reaper cleared ->valid) and the vCPU went to refresh
    for fn in ("hva_to_pfn_retry", "__kvm_gpc_refresh", "kvm_gpc_refresh",
               "kvm_setup_guest_pvclock", "kvm_guest_time_update"):
        assert fn in vcpu_side.trace
    assert cr.result.executions > 27          # main without the clock update: 27


def test_a_cache_not_invalidated_is_read_after_its_page_is_freed(tmp_path):
    """The oracle: with gfn_to_pfn_cache_invalidate_start made a no-op, the vCPU's
    kvmclock write reaches the page the OOM reaper freed."""
    f = tmp_path / "no_gpc_invalidate.py"
    f.write_text(textwrap.dedent('''
        from kmodel.patching import Patch
        patch = Patch(name="no-gpc-invalidate", title="skip the pfn cache invalidation",
                      author="test", date="2026-12-03", summary="a mutant")

        @patch.override("gfn_to_pfn_cache_invalidate_start")
        async def gfn_to_pfn_cache_invalidate_start(kvm, start, end):
            return None
    '''))
    cr = run_check(CheckSpec(patches=["upstream", str(f)], preset="nonrt", arch="x86",
                             scenario="oom-reap", strategy="dpor",
                             knobs={"kvmclock": True}, config={"KCSAN": False}))
    (uaf,) = uafs_in(cr, "kvm_setup_guest_pvclock")
    assert uaf.task == "qemu-vcpu0"
    for fn in ("kvm_setup_guest_pvclock", "kvm_guest_time_update",
               "kvm_arch_vcpu_ioctl_run"):
        assert fn in uaf.trace
    assert "gfn_to_pfn_cache is valid over pfn" in uaf.text
    assert "freed by oom_reaper" in uaf.text


def test_a_design_that_drops_kvm_at_oom_leaves_the_cache_over_a_freed_page():
    """after-oom-unregister-sync-fixed unregisters KVM's notifier for the reap: the SPTE
    zap of ->release happens, but nothing invalidates the pfn cache."""
    cr = check("after-oom-unregister-sync-fixed")
    (uaf,) = uafs_in(cr, "kvm_setup_guest_pvclock")
    assert uaf.task == "qemu-vcpu0"
    assert "kvm_guest_time_update" in uaf.trace


def test_kvmclock_knob_is_bool():
    import subprocess, sys
    p = subprocess.run([sys.executable, "-m", "kmodel.cli", "check", "-s", "oom-reap",
                        "--knob", "kvmclock=7", "-q"], capture_output=True, text=True)
    assert p.returncode == 2
    assert len(p.stderr.strip().splitlines()) == 1 and "kvmclock" in p.stderr
