"""Issue 11 item 6: arm64's ->release tears stage 2 down (kvm_arch_flush_shadow_all ->
kvm_uninit_stage2_mmu -> kvm_free_stage2_pgd: mmu->pgt = NULL under mmu_lock, the table
destroyed after), and a vCPU fault after it hands the NULL pgt to kvm_pgtable_stage2_map."""

from kmodel.api import CheckSpec, run_check


def check(design, scenario, arch="arm64"):
    return run_check(CheckSpec(patches=[design], preset="nonrt", arch=arch,
                               scenario=scenario, strategy="dpor"))


def oopses(cr):
    return [r for r in cr.result.reports if r.kind == "bug"
            and "NULL pointer dereference" in r.title]


def test_a_vcpu_fault_after_an_early_release_oopses_on_the_null_stage2_table():
    """oom-enter-unregister runs KVM's ->release from the OOM kill while the vCPU still
    runs; its next stage-2 fault passes mmu_invalidate_retry (release bumps no sequence)
    and walks a NULL table."""
    cr = check("oom-enter-unregister", "oom-fault")
    (oops,) = oopses(cr)
    assert oops.task == "qemu-vcpu0"
    assert oops.function == "kvm_pgtable_stage2_map"
    for fn in ("kvm_pgtable_stage2_map", "user_mem_abort", "kvm_handle_guest_abort",
               "kvm_arch_vcpu_ioctl_run"):
        assert fn in oops.trace
    assert "Unable to handle kernel NULL pointer dereference at virtual address " \
           "0000000000000000" in oops.text
    assert "pgt->ia_bits" in oops.text


def test_upstream_never_faults_on_a_torn_down_table():
    for scenario in ("oom-fault", "oom-exit", "oom-vm-close"):
        cr = check("upstream", scenario)
        assert cr.result.complete
        assert not oopses(cr), scenario


def test_x86_release_zaps_and_keeps_the_root():
    """On x86 the same design's late fault installs an SPTE again (kvm_mmu_zap_all keeps
    the TDP root): no oops there."""
    cr = check("oom-enter-unregister", "oom-fault", arch="x86")
    assert not oopses(cr)

