"""virt/kvm/kvm_mm.h: what kvm_main.c shares with pfncache.c -- hva_to_pfn, the GUP-backed
lookup of a host page (its bodies are kvm_main.c's; a module of their own so that
pfncache and kvm_main do not import each other)."""

from __future__ import annotations

from ...kernel.core import kfunc


@kfunc("virt/kvm/kvm_main.c")
async def hva_to_pfn(mm, hva: int, write: bool):
    """kvm_main.c: hva_to_pfn: GUP-fast first (a page already mapped, no signal check),
    then the slow GUP, which gives up with a fatal signal pending (SIGPENDING)."""
    from ...mm import gup
    page = await gup.get_user_page_fast_only(mm, hva, write)
    if page is not None:
        return page
    return await hva_to_pfn_slow(mm, hva, write)


@kfunc("virt/kvm/kvm_main.c")
async def hva_to_pfn_slow(mm, hva: int, write: bool):
    from ...mm import gup
    return await gup.get_user_pages_unlocked(mm, hva, write)
