"""include/linux/list.h: the hlist -- a head with a ``first`` pointer, nodes with ``next``
and ``pprev`` (the address of the pointer that points at the node).

Read against Kingxukai/linux (a 2025 fork of torvalds/linux), include/linux/list.h.

Every pointer load or store is one visible op on that one field of that one object, so
two tasks conflict only where the kernel's would: a walker reading ``X->next`` and a
writer rewriting ``Y->pprev`` commute.  The access is marked (READ_ONCE/WRITE_ONCE) or
plain exactly where list.h marks it, so KCSAN-style race reports follow the kernel's.

A pointer to a pointer (``pprev``, ``&h->first``, ``&n->next``) is a ``slot``: the object
and the name of the field, which is how the model addresses a field anyway.

The helpers are static inlines: ``@kfunc(..., inline=True)`` keeps them out of call
traces, as the compiler does.
"""

from __future__ import annotations

from ..kernel.core import kfunc
from .rwonce import READ_ONCE, WRITE_ONCE, load, store


class hlist_head:
    def __init__(self, cname: str):
        self.first = None                  # struct hlist_node *
        self.cname = cname


class hlist_node:
    """``container`` is the struct the node is embedded in (hlist_entry's container_of);
    ``parent`` is the allocation that holds it, whose kfree() poisons the node too."""

    def __init__(self, container, cname: str, parent=None):
        self.next = None                   # struct hlist_node *
        self.pprev = None                  # struct hlist_node ** (a slot), NULL: unhashed
        self.container = container
        self.cname = cname
        self.parent = parent

    # KASAN: the node is memory inside ``parent``; freeing that poisons the node.
    @property
    def kasan_freed(self):
        return getattr(self.parent, "kasan_freed", None) if self.parent is not None else None

    @property
    def kasan_reported(self):
        return getattr(self.parent, "kasan_reported", False)

    @kasan_reported.setter
    def kasan_reported(self, value):
        if self.parent is not None:
            self.parent.kasan_reported = value

    def __repr__(self):
        return f"<hlist_node {self.cname}>"


def slot_name(slot) -> str:
    """How C would write the pointer a slot names: &head.first, &node.next."""
    obj, field = slot
    return f"&{obj.cname}.{field}"


def _f(obj, field: str) -> str:
    return f"{obj.cname}.{field}"


def hlist_entry(node):
    """container_of(node, type, member)."""
    return None if node is None else node.container


def INIT_HLIST_HEAD_at_setup(h: hlist_head) -> None:
    h.first = None


def hlist_add_head_rcu_at_setup(n: hlist_node, h: hlist_head) -> None:
    """hlist_add_head_rcu as done before the run starts (not explored): the same pointer
    changes, without steps."""
    first = h.first
    n.next = first
    n.pprev = (h, "first")
    h.first = n
    if first is not None:
        first.pprev = (n, "next")


# -- reading -----------------------------------------------------------------------------

@kfunc("include/linux/list.h", inline=True)
async def hlist_unhashed(h: hlist_node) -> bool:
    """``!h->pprev``, a plain load: callers serialise it themselves (or race)."""
    return not await load(h, "pprev", f"hlist_unhashed({h.cname}): {_f(h, 'pprev')}")


@kfunc("include/linux/list.h", inline=True)
async def hlist_unhashed_lockless(h: hlist_node) -> bool:
    return not await READ_ONCE(h, "pprev", f"hlist_unhashed_lockless({h.cname})")


@kfunc("include/linux/list.h", inline=True)
async def hlist_empty(h: hlist_head) -> bool:
    """``!READ_ONCE(h->first)``."""
    return not await READ_ONCE(h, "first", f"hlist_empty({h.cname}): READ_ONCE({_f(h, 'first')})")


async def _write_slot(slot, value, marked: bool, why: str) -> None:
    if slot is None:                      # ``*pprev = ...`` with pprev == NULL
        from ..arch.fault import null_pointer_dereference
        null_pointer_dereference(f"{why}: WRITE_ONCE(*pprev, next), pprev == NULL", 0, True)
    obj, field = slot
    label = f"{why}: {_f(obj, field)} = {value.cname if value is not None else 'NULL'}"
    if marked:
        await WRITE_ONCE(obj, field, value, label)
    else:
        await store(obj, field, value, label)


# -- changing ----------------------------------------------------------------------------

@kfunc("include/linux/list.h", inline=True)
async def __hlist_del(n: hlist_node) -> None:
    """Unlink n: ``*pprev = next`` and ``next->pprev = pprev`` (both WRITE_ONCE); n's own
    pointers are left as they were, so a walker standing on n still reaches next."""
    nxt = await load(n, "next", f"__hlist_del: {_f(n, 'next')}")
    pprev = await load(n, "pprev", f"__hlist_del: {_f(n, 'pprev')}")
    await _write_slot(pprev, nxt, True, "__hlist_del")
    if nxt is not None:
        await WRITE_ONCE(nxt, "pprev", pprev, f"__hlist_del: {_f(nxt, 'pprev')} = "
                         f"{slot_name(pprev)}")


@kfunc("include/linux/list.h", inline=True)
async def INIT_HLIST_NODE(h: hlist_node) -> None:
    """``h->next = NULL; h->pprev = NULL;`` -- plain stores."""
    await store(h, "next", None, f"INIT_HLIST_NODE: {_f(h, 'next')} = NULL")
    await store(h, "pprev", None, f"INIT_HLIST_NODE: {_f(h, 'pprev')} = NULL")


@kfunc("include/linux/list.h", inline=True)
async def hlist_del_init(n: hlist_node) -> None:
    """If hashed: unlink, then INIT_HLIST_NODE (next and pprev NULL): a walker standing on
    n now ends its walk there."""
    if not await hlist_unhashed(n):
        await __hlist_del(n)
        await INIT_HLIST_NODE(n)


@kfunc("include/linux/list.h", inline=True)
async def hlist_add_head(n: hlist_node, h: hlist_head) -> None:
    """Not for RCU readers: n->next, first->pprev, h->first, n->pprev, in that order
    (all WRITE_ONCE)."""
    first = await load(h, "first", f"hlist_add_head: {_f(h, 'first')}")
    await WRITE_ONCE(n, "next", first, f"hlist_add_head: {_f(n, 'next')} = "
                     f"{first.cname if first is not None else 'NULL'}")
    if first is not None:
        await WRITE_ONCE(first, "pprev", (n, "next"),
                         f"hlist_add_head: {_f(first, 'pprev')} = &{n.cname}.next")
    await WRITE_ONCE(h, "first", n, f"hlist_add_head: {_f(h, 'first')} = {n.cname}")
    await WRITE_ONCE(n, "pprev", (h, "first"),
                     f"hlist_add_head: {_f(n, 'pprev')} = {slot_name((h, 'first'))}")


# -- walking -----------------------------------------------------------------------------
#
# The for-each macros are async generators: ``async for sub in hlist_for_each_entry(...)``.
# Each pointer the macro loads is one step, taken when the C loop would take it.

async def hlist_for_each_entry(head: hlist_head):
    """``pos = head->first; pos; pos = pos->member.next`` -- plain loads; next is read
    after the body."""
    pos = await load(head, "first", f"hlist_for_each_entry: {_f(head, 'first')}")
    while pos is not None:
        yield pos.container
        pos = await load(pos, "next", f"hlist_for_each_entry: {_f(pos, 'next')}")


async def hlist_for_each_entry_safe(head: hlist_head):
    """As hlist_for_each_entry, but ``n = pos->member.next`` is loaded *before* the body,
    so the body may unlink (or re-link) pos."""
    pos = await load(head, "first", f"hlist_for_each_entry_safe: {_f(head, 'first')}")
    while pos is not None:
        nxt = await load(pos, "next", f"hlist_for_each_entry_safe: {_f(pos, 'next')}")
        yield pos.container
        pos = nxt


# -- a head on the stack ------------------------------------------------------------------

def HLIST_HEAD(name: str) -> hlist_head:
    """``HLIST_HEAD(name)``: an empty head declared in a function (on its stack)."""
    return hlist_head(name)


def frame_returned(head: hlist_head) -> None:
    """The function that declared ``head`` with HLIST_HEAD returns: its frame is dead, and
    a node still pointing into it (``pprev == &head.first``) points at dead stack --
    KASAN's stack-use-after-return if it is followed."""
    from ..kernel.core import call_trace
    from ..kernel.sched import current
    ts = current()
    head.kasan_kind = "stack-use-after-return"
    head.kasan_freed = (ts.comm, ts.pid, call_trace())
