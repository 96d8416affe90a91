"""include/linux/rculist.h: the hlist helpers for RCU/SRCU readers.

Read against Kingxukai/linux (a 2025 fork of torvalds/linux), include/linux/rculist.h.

The walkers load each pointer with rcu_dereference_raw() (a marked load); the writers
publish with rcu_assign_pointer()/WRITE_ONCE() and leave a deleted node's ``next`` alone
so that a reader standing on it still reaches the rest of the list.  A walker's ``cond``
is the lockdep expression of __list_check_srcu(): false under PROVE_RCU is "suspicious
RCU usage".
"""

from __future__ import annotations

from ..kernel.core import kernel, kfunc
from .rwonce import READ_ONCE, WRITE_ONCE, load, store
from .list import __hlist_del, _f, hlist_head, hlist_node, hlist_unhashed, slot_name


@kfunc("include/linux/rculist.h", inline=True)
async def hlist_add_head_rcu(n: hlist_node, h: hlist_head) -> None:
    """``first = h->first; n->next = first; WRITE_ONCE(n->pprev, &h->first);
    rcu_assign_pointer(h->first, n); if (first) WRITE_ONCE(first->pprev, &n->next)``.
    n is fully set up before it is published."""
    first = await load(h, "first", f"hlist_add_head_rcu: {_f(h, 'first')}")
    await store(n, "next", first, f"hlist_add_head_rcu: {_f(n, 'next')} = "
                f"{first.cname if first is not None else 'NULL'}")
    await WRITE_ONCE(n, "pprev", (h, "first"),
                     f"hlist_add_head_rcu: {_f(n, 'pprev')} = {slot_name((h, 'first'))}")
    await WRITE_ONCE(h, "first", n,
                     f"hlist_add_head_rcu: rcu_assign_pointer({_f(h, 'first')}, {n.cname})")
    if first is not None:
        await WRITE_ONCE(first, "pprev", (n, "next"),
                         f"hlist_add_head_rcu: {_f(first, 'pprev')} = &{n.cname}.next")


@kfunc("include/linux/rculist.h", inline=True)
async def hlist_del_init_rcu(n: hlist_node) -> None:
    """If hashed: unlink (n->next kept for readers on n), then WRITE_ONCE(n->pprev, NULL)."""
    if not await hlist_unhashed(n):
        await __hlist_del(n)
        await WRITE_ONCE(n, "pprev", None, f"hlist_del_init_rcu: {_f(n, 'pprev')} = NULL")


def __list_check_srcu(cond: bool, site: tuple[str, int]) -> None:
    """RCU_LOCKDEP_WARN(!(cond), "RCU-list traversed without holding the required lock!")."""
    k = kernel()
    if not cond and k.lockdep.on:
        k.lockdep.rcu_suspicious(site[0], site[1],
                                 "RCU-list traversed without holding the required lock!")


async def hlist_for_each_entry_srcu(head: hlist_head, cond: bool, site=("mm/mmu_notifier.c", 0)):
    """``pos = rcu_dereference_raw(head->first); pos; pos = rcu_dereference_raw(pos->next)``:
    one marked load per step, next read after the body -- the list as it is when each
    pointer is read, not a snapshot."""
    __list_check_srcu(cond, site)
    pos = await READ_ONCE(head, "first",
                          f"hlist_for_each_entry_srcu: rcu_dereference_raw({_f(head, 'first')})")
    while pos is not None:
        yield pos.container
        pos = await READ_ONCE(pos, "next",
                              f"hlist_for_each_entry_srcu: rcu_dereference_raw({_f(pos, 'next')})")


async def hlist_for_each_entry_rcu(head: hlist_head, cond: bool = True,
                                   site=("mm/mmu_notifier.c", 0)):
    """The same walk for rcu_read_lock() readers (``cond`` optional, as in the macro)."""
    __list_check_srcu(cond, site)
    pos = await READ_ONCE(head, "first",
                          f"hlist_for_each_entry_rcu: rcu_dereference_raw({_f(head, 'first')})")
    while pos is not None:
        yield pos.container
        pos = await READ_ONCE(pos, "next",
                              f"hlist_for_each_entry_rcu: rcu_dereference_raw({_f(pos, 'next')})")
