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
