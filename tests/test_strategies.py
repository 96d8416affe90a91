"""Strategies on small engine-level programs with known numbers: optimal DPOR (one
execution per class, nothing sleep-blocked), bounded search, PCT and random walks
(reproducible by seed), counterexample shrinking, and the bare re-run of prefixes."""

from __future__ import annotations

import pytest

from kmodel import api
from kmodel.engine import (ACQ_W, READ, REL_W, UPDATE, WRITE, Limits, Op, Report, Wait,
                           current_task)
from kmodel.engine.shrink import shrink
from kmodel.engine.strategies import Dpor, Naive, Pct, RandomWalk, Replay


class Var:
    def __init__(self, name, value=0):
        self.name = name
        self.value = value


class Lock:
    def __init__(self, name):
        self.name = name
        self.owner = None


async def acquire(lock):
    await Wait(lock, ACQ_W, f"lock {lock.name}", lambda: lock.owner is None)
    lock.owner = current_task().name


async def release(lock):
    await Op(lock, REL_W, f"unlock {lock.name}")
    lock.owner = None


async def write(var, value):
    await Op(var, WRITE, f"{var.name} = {value}")
    var.value = value


async def read(var):
    await Op(var, READ, f"read {var.name}")
    return var.value


class Prog:
    """Tasks are ``body(prog)`` coroutine functions; ``self.finals`` collects end states."""

    def __init__(self, bodies, setup, seen=None):
        self.bodies = bodies
        self.setup = setup
        self.seen = seen if seen is not None else []

    def start(self, ex):
        self.ex = ex
        self.setup(self)
        for name, body in self.bodies.items():
            ex.spawn(name, body(self))

    def at_deadlock(self, ex, blocked):
        ex.report(Report("deadlock", "deadlock", blocked[0].name, "prog", [], "deadlock"))

    def at_livelock(self, ex):
        pass

    def at_end(self, ex):
        self.seen.append(tuple(ex.schedule))

    def on_data_race(self, ex, earlier, later):
        pass

    def report(self, title):
        self.ex.report(Report("invariant", title, current_task().name, title, [], title))


def run(strategy, bodies, setup, **limits):
    seen = []
    res = strategy.explore(lambda: Prog(bodies, setup, seen), Limits(**limits))
    return res, seen


# -- programs -----------------------------------------------------------------------------

def locked_writers(n):
    """n tasks, each writes x under lock L: n! orders of the critical sections."""
    def setup(p):
        p.L, p.x = Lock("L"), Var("x")

    def body(i):
        async def b(p):
            await acquire(p.L)
            await write(p.x, i)
            await release(p.L)
        return b
    return {f"t{i}": body(i) for i in range(n)}, setup


def one_writer_two_readers():
    def setup(p):
        p.x = Var("x")

    async def w(p):
        await write(p.x, 1)

    async def r(p):
        await read(p.x)
    return {"w": w, "r1": r, "r2": r}, setup


def independent(n):
    def setup(p):
        p.vars = [Var(f"v{i}") for i in range(n)]

    def body(i):
        async def b(p):
            await write(p.vars[i], 1)
            await read(p.vars[i])
        return b
    return {f"t{i}": body(i) for i in range(n)}, setup


def counters():
    """Two atomic increments commute with each other, not with the read: the read comes
    first, last, or between them (after a or after b)."""
    def setup(p):
        p.c = Var("c")

    def inc(p):
        async def b(p):
            await Op(p.c, UPDATE, "atomic_inc(c)")
            p.c.value += 1
        return b(p)

    async def rd(p):
        await read(p.c)
    return {"a": inc, "b": inc, "r": rd}, setup


def flag_handshake():
    """t1 sleeps until t0 sets the flag, then both write x."""
    def setup(p):
        p.f, p.x = Var("f"), Var("x")

    async def t0(p):
        await write(p.f, 1)
        await write(p.x, 0)

    async def t1(p):
        await Wait(p.f, READ, "wait f", lambda: p.f.value == 1)
        await write(p.x, 1)
    return {"t0": t0, "t1": t1}, setup


KNOWN = [
    ("2 locked writers", locked_writers(2), 2),
    ("3 locked writers", locked_writers(3), 6),
    ("4 locked writers", locked_writers(4), 24),
    ("one writer, two readers", one_writer_two_readers(), 4),
    ("4 independent tasks", independent(4), 1),
    ("two increments and a read", counters(), 4),   # r first, last, or between
]


@pytest.mark.parametrize("what,prog,classes", KNOWN, ids=[k[0] for k in KNOWN])
def test_dpor_runs_one_execution_per_class(what, prog, classes):
    res, seen = run(Dpor(), *prog)
    assert res.complete
    assert res.classes == classes
    assert res.executions == classes
    assert res.sleep_blocked == 0
    nres, _ = run(Naive(), *prog)
    assert nres.classes == classes and nres.executions >= res.executions


def test_naive_numbers():
    res, seen = run(Naive(), *locked_writers(2))
    # each task: start, lock, write, unlock; the other's lock waits while one holds it
    assert res.complete and res.classes == 2 and len(set(seen)) == res.executions


def test_wait_for_a_flag():
    res, _ = run(Dpor(), *flag_handshake())
    nres, _ = run(Naive(), *flag_handshake())
    assert res.classes == nres.classes == 2
    assert res.complete
    # reversing "set f" and "wait f" is not possible (the wait needs the set); DPOR can
    # only learn that by trying, which costs one execution that ends sleep-blocked
    assert res.executions == res.classes + res.sleep_blocked and res.sleep_blocked <= 1


@pytest.mark.parametrize("reuse", [True, False])
def test_prefix_reuse_changes_nothing(reuse):
    prog = locked_writers(3)
    a = Dpor()
    a.reuse_prefix = reuse
    res, seen = run(a, *prog)
    b = Dpor()
    b.reuse_prefix = not reuse
    res2, seen2 = run(b, *prog)
    assert seen == seen2 and res.classes == res2.classes == 6


# -- bounded search -------------------------------------------------------------------------

def two_writes_one_reader():
    """t1 writes x=1 then x=2; t2 reads x.  Seeing 2 needs no preemption (t1 runs to the
    end first); seeing 1 needs t1 preempted between its writes."""
    def setup(p):
        p.x = Var("x")

    async def t1(p):
        await write(p.x, 1)
        await write(p.x, 2)

    async def t2(p):
        v = await read(p.x)
        if v:
            p.report(f"saw{v}")
    return {"t1": t1, "t2": t2}, setup


def titles(res):
    return sorted(r.title for r in res.reports)


def test_bounded_zero_finds_only_the_bug_needing_no_preemption():
    res, _ = run(Dpor(preemption_bound=0), *two_writes_one_reader())
    assert titles(res) == ["saw2"]
    assert not res.complete          # the bound cut branches off
    res1, _ = run(Dpor(preemption_bound=1), *two_writes_one_reader())
    assert titles(res1) == ["saw1", "saw2"]
    full, _ = run(Dpor(), *two_writes_one_reader())
    assert titles(full) == ["saw1", "saw2"] and full.complete


def test_bounded_with_an_unreachable_bound_is_the_full_search():
    prog = locked_writers(3)
    res, _ = run(Dpor(preemption_bound=100), *prog)
    full, _ = run(Dpor(), *prog)
    assert res.complete and (res.executions, res.classes) == (full.executions, full.classes)


# -- pct and random ---------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda s: Pct(runs=30, depth=2, seed=s),
                                  lambda s: RandomWalk(runs=30, seed=s)],
                         ids=["pct", "random"])
def test_seeded_strategies_are_reproducible(make):
    prog = locked_writers(3)
    _, a = run(make(7), *prog)
    _, b = run(make(7), *prog)
    _, c = run(make(8), *prog)
    assert len(a) >= 30 and a == b              # pct adds one probe run (its k)
    assert a != c


def test_pct_depth_two_finds_the_preemption_bug():
    res, _ = run(Pct(runs=50, depth=2, seed=1), *two_writes_one_reader())
    assert titles(res) == ["saw1", "saw2"]
    res1, _ = run(Pct(runs=50, depth=1, seed=1), *two_writes_one_reader())
    assert "saw1" not in titles(res1)     # depth 1: no priority change, no preemption


# -- shrinking --------------------------------------------------------------------------------

def chatty():
    """The bug (t2 sees x == 1) needs one preemption; t3 and t4 only add noise."""
    bodies, setup = two_writes_one_reader()

    def setup2(p):
        setup(p)
        p.y = Var("y")

    async def noise(p):
        for i in range(3):
            await write(p.y, i)
    bodies = dict(bodies, t3=noise, t4=noise)
    return bodies, setup2


def _preemptions(factory, schedule):
    from kmodel.engine.shrink import _measure, _run
    ex, log = _run(factory, schedule, Limits())
    rep = next(r for r in ex.reports if r.title == "saw1")
    return _measure(list(ex.schedule), log, rep.step)


def test_shrinking_keeps_the_report_and_removes_preemptions():
    bodies, setup = chatty()
    fac = lambda: Prog(bodies, setup)            # noqa: E731
    res = RandomWalk(runs=200, seed=3).explore(fac, Limits())
    rep = next(r for r in res.reports if r.title == "saw1")
    before = _preemptions(fac, rep.schedule)
    out = shrink(fac, rep.schedule, rep.kind, rep.function, Limits())
    assert out is not None
    assert out.before == before
    assert out.after <= out.before
    assert out.after[0] == 1                     # the bug needs exactly one preemption
    assert out.after[2] == 2                     # and only t1 and t2
    ex = Replay(out.schedule).run(fac, Limits())
    assert any(r.kind == rep.kind and r.function == rep.function for r in ex.reports)


def test_run_check_shrinks_reports():
    spec = api.CheckSpec(patches=["oom-enter-deferred-detach"], preset="rt",
                         scenario="oom-reap", stop_on_first=True)
    cr = api.run_check(spec)
    assert cr.result.reports
    for rep in cr.result.reports:
        again = api.replay(cr.replay_record(rep))
        assert any(r.kind == rep.kind and r.function == rep.function
                   for r in again.result.reports)


# -- the model ------------------------------------------------------------------------------

# memslot-vs-madvise: 111 classes while a grace period's end conflicted with every SRCU reader;
# 47 since it waits on its snapshot's readers only (042a7c8); 87 (reclaim 45 -> 71, mrelease
# 27 -> 33) since rw locks are fair: a writer queued while readers hold the lock is a state.
# mrelease: 36 since the vCPU thread, killed after KVM_RUN returned, exits
# from userspace too (issue 16's thread groups; before, only a kill before its return did)
# memslot-vs-madvise: 65 since an SRCU reader's unlock no longer races with the start of
# a grace period (issue 13)
@pytest.mark.parametrize("scenario,classes", [("memslot-vs-madvise", 65), ("reclaim", 71),
                                              ("mrelease", 36)])
def test_dpor_on_small_model_scenarios(scenario, classes):
    cr = api.run_check(api.CheckSpec(patches=["upstream"], preset="nonrt",
                                     scenario=scenario, strategy="dpor"))
    r = cr.result
    assert r.complete and r.classes == classes
    assert r.executions == classes and r.sleep_blocked == 0
