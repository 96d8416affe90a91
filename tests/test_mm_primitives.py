"""mm primitives as the kernel has them: the CoW fault's pte_same re-check
(mm/memory.c: wp_page_copy) and mm_struct lifetime (include/linux/sched/mm.h,
kernel/fork.c)."""

from helpers import Snippet, named

from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor
from kmodel.linux.mm import memory
from kmodel.linux.mm.mm_types import mm_struct, vm_area_struct

ADDR = 5


def cow_setup(p):
    p.mm = mm_struct("qemu_mm")
    p.vma = vm_area_struct(p.mm, 0, 16, name="anon")
    p.mm.vmas.append(p.vma)
    p.old = memory.alloc_page()
    p.vma.ptes[ADDR] = p.old
    p.vma.cow = {ADDR}


@named
async def cow_fault(p):
    await memory.handle_mm_fault(p.vma, ADDR, True)


@named
async def madvise_dontneed(p):
    await memory.zap_page_range_single(p.vma, ADDR, ADDR + 1)


def test_cow_fault_racing_a_zap_never_maps_a_stale_copy_over_the_zapped_pte():
    """madvise(MADV_DONTNEED) may zap the PTE after the CoW fault looked at it and
    before it installs its copy: pte_same fails under the PTE lock, the copy is freed
    and nothing old reappears -- a later fault maps a fresh page.  The old page is freed
    exactly once (the zap's reference, then the fault's pin)."""
    outcomes = set()

    class Watch(Snippet):
        def at_end(self, ex):
            labels = [label for _, _, label in ex.trace]
            zap = next(i for i, lb in enumerate(labels) if lb.startswith("unmap_page_range("))
            installs = [i for i, lb in enumerate(labels)
                        if lb.startswith(("wp_page_copy(", "do_anonymous_page("))]
            mapped = self.vma.ptes.get(ADDR)
            if mapped is not None and zap < installs[-1]:
                # mapped after the zap: only a fresh page may be
                assert labels[installs[-1]].startswith("do_anonymous_page("), \
                    "a copy of the zapped page was mapped after MADV_DONTNEED"
            outcomes.add((self.old.refcount, self.old.freed,
                          "none" if mapped is None else "mapped",
                          labels[installs[-1]].split("(")[0]))

    res = Dpor().explore(lambda: Watch("nonrt", {"qemu-vcpu0": cow_fault,
                                                  "qemu-madvise": madvise_dontneed},
                                       cow_setup), Limits())
    assert res.complete and res.reports == []
    assert outcomes == {
        (0, True, "none", "wp_page_copy"),        # copied, then zapped; or zapped between
        (0, True, "mapped", "do_anonymous_page"),  # zapped first: a fresh page
    }
    assert res.classes == 4


# -- mm_struct lifetime ------------------------------------------------------------

def mm_setup(p):
    p.mm = mm_struct("qemu_mm")
    p.seen = []


@named
async def oom_killer_extra_mmdrop(p):
    from kmodel.linux.include.sched_mm import mmdrop, mmgrab
    from kmodel.linux.kernel.sched import cond_resched
    mmgrab(p.mm)                 # __oom_kill_process's pin
    mmdrop(p.mm)
    await cond_resched()
    mmdrop(p.mm)                 # one too many: the owner's reference goes, mm freed
    await cond_resched()
    mmdrop(p.mm)                 # below zero: a write to the freed mm_struct


def test_mmdrop_below_zero_is_a_kasan_report_on_the_freed_mm_struct():
    from helpers import explore, kinds
    res = explore("nonrt", {"stress-ng": oom_killer_extra_mmdrop}, mm_setup)
    assert res.complete and kinds(res) == ["use-after-free"]
    r = res.reports[0]
    lines = r.text.splitlines()
    assert lines[1] == "BUG: KASAN: slab-use-after-free in oom_killer_extra_mmdrop"
    assert lines[2].startswith("Write of qemu_mm->mm_count by task stress-ng/")
    assert "Freed by task stress-ng/" in r.text and "  kfree" in r.text
    assert "The buggy address belongs to the object qemu_mm (struct mm_struct)" in r.text


@named
async def last_user_then_late_get(p):
    from kmodel.linux.include.sched_mm import mmget_not_zero
    from kmodel.linux.kernel.fork import mmput
    await mmput(p.mm)                            # the last user: exit_mmap, mmdrop
    p.seen.append(await mmget_not_zero(p.mm))    # too late: the mm is gone


def test_mmput_frees_the_mm_and_mmget_not_zero_then_fails_on_it():
    from helpers import explore, kinds
    res = explore("nonrt", {"qemu": last_user_then_late_get}, mm_setup)
    assert res.complete
    # mm_count reached zero in __mmput: the struct is freed, and the late
    # atomic_inc_not_zero reads freed memory
    assert kinds(res) == ["use-after-free"]
    assert "Write of qemu_mm->mm_users" in res.reports[0].text
    assert res.reports[0].function == "last_user_then_late_get"


def test_an_mm_still_referenced_at_the_end_is_a_kmemleak_report():
    from kmodel.linux.include.sched_mm import mmgrab
    from kmodel.linux.kernel.fork import kmemleak_check_mm

    @named
    async def pins_and_forgets(p):
        from kmodel.linux.kernel.sched import cond_resched
        mmgrab(p.mm)
        await cond_resched()

    class Leaky(Snippet):
        def at_end(self, ex):
            kmemleak_check_mm(ex, self.mm, "the process exited and no VM holds it")

    def setup(p):
        mm_setup(p)
        p.mm.mm_count = 0          # the owner's reference already gone

    res = Dpor().explore(lambda: Leaky("nonrt", {"qemu": pins_and_forgets}, setup),
                         Limits())
    assert res.complete and [r.kind for r in res.reports] == ["memory-leak"]
    r = res.reports[0]
    assert r.title == "kmemleak: 1 new suspected memory leaks (mm_struct)"
    assert r.text.startswith("unreferenced object qemu_mm (size 1408):")
    assert "mm_count is 1" in r.text
