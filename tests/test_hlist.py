"""The subscription hlist as include/linux/list.h and rculist.h have it (issue 11, item 2)
and the designs that use it as posted (item 5)."""

import pytest

from helpers import explore
from kmodel.api import CheckSpec, run_check
from kmodel.linux.include.list import hlist_add_head, hlist_add_head_rcu_at_setup, \
    hlist_del_init, hlist_head, hlist_node
from kmodel.linux.include.rculist import hlist_add_head_rcu, hlist_del_init_rcu, \
    hlist_for_each_entry_srcu


class Entry:
    def __init__(self, name):
        self.name = name
        self.hlist = hlist_node(self, name)


def _list(*names):
    head = hlist_head("head")
    entries = {n: Entry(n) for n in names}
    for n in reversed(names):                    # add_head: the last added is first
        hlist_add_head_rcu_at_setup(entries[n].hlist, head)
    return head, entries


def _ptrs(head, entries):
    out = {"head.first": head.first and head.first.cname}
    for n, e in entries.items():
        out[f"{n}.next"] = e.hlist.next and e.hlist.next.cname
        out[f"{n}.pprev"] = e.hlist.pprev and f"{e.hlist.pprev[0].cname}.{e.hlist.pprev[1]}"
    return out


def _run_one(body):
    """Run ``body(program)`` as the only task; return the program's recorded state."""
    seen = []

    def setup(p):
        p.head, p.entries = _list("A", "B", "C")

    async def task(p):
        await body(p)
        seen.append(_ptrs(p.head, p.entries))

    res = explore("nonrt", {"t": task}, setup)
    assert res.executions == 1 and not res.reports
    return seen[0]


def test_the_helpers_rewrite_the_kernels_pointers():
    async def del_rcu(p):
        await hlist_del_init_rcu(p.entries["B"].hlist)
    s = _run_one(del_rcu)
    # unlinked, pprev NULL, but B->next kept for a reader standing on B
    assert s["A.next"] == "C" and s["C.pprev"] == "A.next"
    assert s["B.pprev"] is None and s["B.next"] == "C"

    async def del_init(p):
        await hlist_del_init(p.entries["B"].hlist)
    s = _run_one(del_init)
    assert s["A.next"] == "C" and s["B.pprev"] is None and s["B.next"] is None

    async def rehash(p):                       # the designs' del_init_rcu + add_head
        other = hlist_head("oom_list")
        await hlist_del_init_rcu(p.entries["A"].hlist)
        await hlist_add_head(p.entries["A"].hlist, other)
    s = _run_one(rehash)
    assert s["head.first"] == "B" and s["B.pprev"] == "head.first"
    assert s["A.next"] is None and s["A.pprev"] == "oom_list.first"

    async def add_rcu(p):
        d = Entry("D")
        p.entries["D"] = d
        await hlist_add_head_rcu(d.hlist, p.head)
    s = _run_one(add_rcu)
    assert s["head.first"] == "D" and s["D.next"] == "A" and s["A.pprev"] == "D.next"


def _walk_outcomes(remove):
    """Every list a SRCU walker can see while another task removes B with ``remove``."""
    seen = set()

    def setup(p):
        p.head, p.entries = _list("A", "B", "C")

    async def walker(p):
        names = []
        async for e in hlist_for_each_entry_srcu(p.head, True):
            names.append(e.name)
        seen.add("".join(names))

    async def remover(p):
        await remove(p.entries["B"].hlist)

    res = explore("nonrt", {"walker": walker, "remover": remover}, setup)
    return seen, res


def test_a_walk_reads_one_pointer_per_step_and_sees_the_list_as_it_goes():
    seen, res = _walk_outcomes(hlist_del_init_rcu)
    # standing on B when it is unlinked, the walker still reaches C
    assert seen == {"ABC", "AC"}
    # only the load of A->next races with the unlink: two classes
    assert res.classes == 2 and not res.reports
    seen, res = _walk_outcomes(hlist_del_init)
    # INIT_HLIST_NODE cuts B->next: a walker standing on B stops there, and its
    # READ_ONCE of B->next races with the plain store
    assert seen == {"ABC", "AC", "AB"}
    races = [r for r in res.reports if r.kind == "data-race"]
    assert races and "INIT_HLIST_NODE" in races[0].text


def check(design, scenario, preset="nonrt"):
    return run_check(CheckSpec(patches=[design], preset=preset, scenario=scenario,
                               strategy="dpor"))


def test_v2_unlinks_with_a_plain_store_under_an_exiting_walker():
    """v2's hlist_del_init() of KVM's node on oom_list (plain INIT_HLIST_NODE stores, no
    lock) races with exit_mmap's SRCU walk standing on that node."""
    cr = check("v2-call-srcu", "oom-exit")
    assert cr.result.complete
    races = [r for r in cr.result.reports if r.kind == "data-race"
             and {"mmu_notifier_oom_enter", "mn_hlist_release"} <= set(r.title.split())]
    assert races
    assert any("INIT_HLIST_NODE: kvm->mmu_notifier.hlist.next = NULL" in r.text
               and "hlist_for_each_entry_srcu" in r.text for r in races)


def test_v2_unregister_and_oom_enter_unlink_the_same_node_through_null():
    cr = check("v2-call-srcu", "oom-vm-close")
    assert cr.result.complete
    oops = {(r.task, r.function) for r in cr.result.reports if r.kind == "bug"}
    assert ("qemu", "mmu_notifier_unregister") in oops
    (bug,) = [r for r in cr.result.reports if r.kind == "bug" and r.task == "qemu"]
    assert bug.title == "BUG: kernel NULL pointer dereference in mmu_notifier_unregister"
    # close() drops the VM file's last reference and runs ->release itself
    assert bug.trace == ["mmu_notifier_unregister", "kvm_destroy_vm", "kvm_put_kvm",
                         "kvm_vm_release", "__fput", "fput_close_sync", "sys_close"]
    stack = [r for r in cr.result.reports if "stack-use-after-return" in r.title]
    assert stack and stack[0].task == "qemu" and stack[0].function == "mmu_notifier_unregister"
    assert "in the frame of mmu_notifier_oom_enter" in stack[0].text


# -- Paolo's sketch as posted and repaired (item 5) --------------------------------------

def test_paolos_sketch_as_posted_dereferences_null_for_an_mm_without_notifiers():
    cr = check("after-oom-unregister-sync", "other-mm")
    (bug,) = cr.result.reports
    assert bug.kind == "bug" and bug.task == "stress-ng"
    assert bug.function == "mmu_notifier_oom_enter"
    assert bug.title == "BUG: kernel NULL pointer dereference in mmu_notifier_oom_enter"
    assert bug.trace[:2] == ["mmu_notifier_oom_enter", "__oom_kill_process"]
    assert "address: 000000000000000c" in bug.text
    fixed = check("after-oom-unregister-sync-fixed", "other-mm")
    assert fixed.verdict == "clean" and fixed.result.complete


def test_paolos_sketch_as_posted_leaves_the_node_pointing_into_a_dead_frame():
    posted = check("after-oom-unregister-sync", "oom-vm-close")
    stack = [r for r in posted.result.reports if "stack-use-after-return" in r.title]
    assert stack and stack[0].task == "qemu"
    assert stack[0].trace[:2] == ["mmu_notifier_unregister", "kvm_destroy_vm"]
    fixed = check("after-oom-unregister-sync-fixed", "oom-vm-close")
    assert not [r for r in fixed.result.reports if "stack" in r.title
                or "mmu_notifier.hlist" in r.title]
    # kvm->mn_registered is a shared field in both: the store and the load race
    for cr in (posted, fixed):
        assert any(r.kind == "data-race" and r.function == "kvm_destroy_vm"
                   and "kvm_mmu_notifier_after_oom_unregister" in r.title
                   for r in cr.result.reports)


@pytest.mark.parametrize("design", ["after-oom-unregister-sync",
                                    "after-oom-unregister-sync-fixed"])
def test_paolos_sketch_still_sleeps_under_task_lock(design):
    cr = check(design, "oom-reap")
    assert [r.function for r in cr.result.reports if r.kind == "sleep-in-atomic"][:1] == \
        ["__synchronize_srcu"]
