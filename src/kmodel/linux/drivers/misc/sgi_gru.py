"""drivers/misc/sgi-gru/grutlbpurge.c and grufault.c: the SGI GRU, a device with its own
TLB of a process's user addresses -- the classic minimal non-KVM user of the hlist
mmu_notifier API (invalidate_range_start/end and ->release, registered with
__mmu_notifier_register and dropped with mmu_notifier_unregister).

Modelled on the GRU as of v5.3 (read: gregkh/linux grutlbpurge.c, and grufault.c's
gru_try_dropin as found in several 4.x-6.x copies): since v5.4 it uses
mmu_notifier_get/put and has no ->release; the v5.3 shape is the one with every classic
callback, which is what a second subscriber must exercise.

The protocol:
- gru_invalidate_range_start: atomic_inc(&gms->ms_range_active), then flush the device
  TLB over the range (gru_flush_tlb_range, a TGH invalidate).  Never fails, never sleeps
  (MMU_INVALIDATE_DOES_NOT_BLOCK in v4.x).
- gru_invalidate_range_end: atomic_dec_and_test(&gms->ms_range_active), wake_up_all.
- gru_release: gms->ms_released = 1 (the context can no longer run: release is called
  from exit_mmap or unregister).
- the TLB miss (gru_try_dropin): fail with -EAGAIN while ms_range_active, else look the
  PTE up (atomic_pte_lookup, a GUP-fast-like walk: no reference is taken) and write the
  TLB entry (tfh_write_restart).  "The GRU contains magic hardware that eliminates races
  between TLB invalidates and TLB dropins. If an invalidate occurs in the window between
  reading the TFH and the subsequent TLB dropin, the dropin is ignored" (grufault.c): the
  model gives the device a flush generation, bumped by every TGH invalidate, that the
  dropin snapshots when it reads the TFH; the write is dropped if it moved.

The device's TLB entries are the model's secondary-MMU entries (page.spte_users), so the
same oracle as KVM's SPTEs applies: a page freed while the registered device maps it,
an entry installed for a freed page, or a device access through an entry to a freed
page is a use-after-free.  Simplified: one GRU context, one ASID, 4K pages, no TLB
preload; the TFH state machine is the flush generation above; wake_up_all wakes nobody
(no task in the model waits on ms_wait_queue).
"""

from __future__ import annotations

from ....engine import READ, WRITE, Op
from ...include.rwonce import READ_ONCE, atomic_dec_and_test, atomic_rmw
from ...kernel.core import kfunc
from ...kernel.locking.spinlock import spin_lock, spin_unlock, spinlock_t
from ...mm import mmu_notifier as mn
from ...mm.memory import report_uaf

EAGAIN = -11
GRU_DROPIN_RETRIES = 2


class gru_mm_struct:
    """grutables.h: struct gru_mm_struct: the notifier, the active-invalidation count,
    the released flag, and (the model's) device TLB: user address -> page."""

    cname = "gru_mm_struct"

    def __init__(self):
        self.ms_notifier = mn.mmu_notifier(gru_mmuops, owner=self, cname="gru")
        self.ms_range_active = 0
        self.ms_released = 0
        self.ms_asid_lock = spinlock_t("&gms->ms_asid_lock")
        self.tlb: dict = {}              # vaddr -> page
        self.flush_gen = 0               # TGH invalidates issued (the TFH race hardware)


def tlb_install(gms, vaddr: int, page) -> None:
    """Before the run: the device already translated ``vaddr``."""
    gms.tlb[vaddr] = page
    page.spte_users.append((gms, vaddr))


def _tlb_drop(gms, vaddr: int) -> None:
    page = gms.tlb.pop(vaddr, None)
    if page is not None and (gms, vaddr) in page.spte_users:
        page.spte_users.remove((gms, vaddr))


@kfunc("drivers/misc/sgi-gru/grutlbpurge.c")
async def gru_flush_tlb_range(gms, start: int, length: int) -> None:
    """grutlbpurge.c: under ms_asid_lock, a TGH invalidate of [start, start+len) for the
    context's ASID; the device drops its entries there (and, per the hardware, any
    dropin whose TFH was read before this)."""
    await spin_lock(gms.ms_asid_lock)
    await Op((gms, "tlb"), WRITE, f"tgh_invalidate(vaddr [{start:#x}, {start + length:#x}))")
    gms.flush_gen += 1
    for vaddr in sorted(v for v in gms.tlb if start <= v < start + length):
        _tlb_drop(gms, vaddr)
    await spin_unlock(gms.ms_asid_lock)


@kfunc("drivers/misc/sgi-gru/grutlbpurge.c")
async def gru_invalidate_range_start(sub, rng) -> int:
    gms = sub.owner
    await atomic_rmw(gms, "ms_range_active", lambda v: v + 1,
                     "atomic_inc(&gms->ms_range_active)")
    await gru_flush_tlb_range(gms, rng.start, rng.end - rng.start)
    return 0


@kfunc("drivers/misc/sgi-gru/grutlbpurge.c")
async def gru_invalidate_range_end(sub, rng) -> None:
    gms = sub.owner
    await atomic_dec_and_test(gms, "ms_range_active",
                              "atomic_dec_and_test(&gms->ms_range_active)", kasan=True)
    # wake_up_all(&gms->ms_wait_queue): nobody in the model sleeps on it


@kfunc("drivers/misc/sgi-gru/grutlbpurge.c")
async def gru_release(sub, mm) -> None:
    """grutlbpurge.c: gru_release: gms->ms_released = 1.  From here no GRU context of the
    process can run (exit_mmap) or the notifier is going (unregister); the model stops
    counting the TLB as a live mapping, and a device access through it is still
    checked."""
    gms = sub.owner
    await Op((gms, "ms_released"), WRITE, "gms->ms_released = 1")
    gms.ms_released = 1
    for vaddr, page in sorted(gms.tlb.items()):
        if (gms, vaddr) in page.spte_users:
            page.spte_users.remove((gms, vaddr))


gru_mmuops = mn.mmu_notifier_ops(
    "gru_mmuops",
    invalidate_range_start=gru_invalidate_range_start,
    invalidate_range_end=gru_invalidate_range_end,
    release=gru_release,
)


def gru_register_mmu_notifier_at_setup(mm) -> gru_mm_struct:
    """grutlbpurge.c: gru_register_mmu_notifier (the first GRU context of the process,
    before the run): kzalloc the gms and __mmu_notifier_register it."""
    gms = gru_mm_struct()
    mn.register_at_setup(gms.ms_notifier, mm)
    return gms


@kfunc("drivers/misc/sgi-gru/grufault.c")
async def gru_try_dropin(gms, mm, vaddr: int, write: bool) -> int:
    """grufault.c: gru_try_dropin: read the TFH (the miss), fail while an invalidation is
    active, look up the PTE, and write the TLB entry -- which the hardware ignores if a
    TGH invalidate came after the TFH was read."""
    await Op((gms, "tlb"), READ, f"read TFH: TLB miss at vaddr {vaddr:#x}")
    tfh_gen = gms.flush_gen
    active = await READ_ONCE(gms, "ms_range_active", "atomic_read(&gms->ms_range_active)")
    if active:
        return EAGAIN                               # failactive
    page = await atomic_pte_lookup(mm, vaddr, write)
    if page is None:
        return EAGAIN                               # failupm: retried in user context
    await tfh_write_restart(gms, vaddr, page, tfh_gen)
    return 0


@kfunc("drivers/misc/sgi-gru/grufault.c")
async def atomic_pte_lookup(mm, vaddr: int, write: bool):
    """grufault.c: atomic_pte_lookup: walk the page table without taking mmap_lock or a
    page reference; the page or None if not present (or not writable for a write)."""
    vma = mm.find_vma(vaddr)
    if vma is None:
        return None
    await Op((vma, "ptes"), READ, f"atomic_pte_lookup({vma.name} @{vaddr:#x})")
    page = vma.ptes.get(vaddr)
    if page is None or (write and vaddr in vma.cow):
        return None
    return page


@kfunc("drivers/misc/sgi-gru/gruhandles.c")
async def tfh_write_restart(gms, vaddr: int, page, tfh_gen: int) -> None:
    """gruhandles.c: tfh_write_restart: the TLB dropin, as one device operation."""
    await Op((gms, "tlb"), WRITE, f"tfh_write_restart(vaddr {vaddr:#x} -> pfn {page.pfn:#x})")
    if gms.flush_gen != tfh_gen:
        return                                      # the hardware drops a raced dropin
    await Op(page, READ, f"map pfn {page.pfn:#x}")
    if page.freed:
        report_uaf(page, f"the GRU's TLB installs vaddr {vaddr:#x} -> freed pfn "
                         f"{page.pfn:#x}", "map")
    _tlb_drop(gms, vaddr)
    tlb_install(gms, vaddr, page)


async def gru_access(gms, mm, vaddr: int, write: bool, who: str) -> bool:
    """A GRU instruction touching ``vaddr``: through the TLB, or a miss dropped in with
    bounded retries.  Returns whether the access happened."""
    for _ in range(GRU_DROPIN_RETRIES + 1):
        await Op((gms, "tlb"), READ, f"GRU access vaddr {vaddr:#x} ({who})")
        page = gms.tlb.get(vaddr)
        if page is not None:
            if page.freed:
                report_uaf(page, f"GRU access to vaddr {vaddr:#x} reaches freed pfn "
                                 f"{page.pfn:#x}", "device access")
            return True
        if await gru_try_dropin(gms, mm, vaddr, write) == EAGAIN:
            continue
    return False


@kfunc("drivers/misc/sgi-gru/grutlbpurge.c")
async def gru_drop_mmu_notifier(gms, mm) -> None:
    """grutlbpurge.c: the last context gone: unregister unless already released, then
    kfree the gms."""
    from ...mm.slab import kfree
    if not gms.ms_released:
        await mn.mmu_notifier_unregister(gms.ms_notifier, mm)
    kfree(gms)
