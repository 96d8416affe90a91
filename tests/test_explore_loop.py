"""The one exploration loop (engine.explore) and the wakeup-tree insertion that the
sequential and the partitioned DPOR share (engine.strategies.wakeup)."""

from __future__ import annotations

from test_strategies import Prog, Var, read, write

from kmodel.engine import WRITE, Limits, Op, Strategy, explore
from kmodel.engine.strategies import Dpor, Naive
from kmodel.engine.strategies.wakeup import SeqEvent, insert


def two_writers():
    """a writes x; b writes x, then reads it: three classes (a's write before b's, between
    b's write and its read, after both); ten interleavings of the five steps."""
    def setup(p):
        p.x = Var("x")

    async def a(p):
        await write(p.x, 1)

    async def b(p):
        await write(p.x, 2)
        await read(p.x)

    return {"a": a, "b": b}, setup


class Countdown(Strategy):
    """Runs ``n`` executions, always the last enabled task; records the hooks called."""
    name = "countdown"

    def __init__(self, n):
        self.n = n
        self.calls = []

    def begin(self, factory, limits):
        self.calls.append("begin")

    def next_execution(self):
        self.calls.append("next")
        self.n -= 1
        return self.n >= 0

    def setup(self, ex):
        self.calls.append("setup")

    def pick(self, ex, enabled):
        return enabled[-1], ()

    def after_execution(self, ex):
        self.calls.append(f"end {ex.outcome} {len(ex.schedule)}")


def test_the_loop_calls_the_hooks_in_order_and_reports_progress():
    bodies, setup = two_writers()
    progress = []
    s = Countdown(2)
    res = explore(s, lambda: Prog(bodies, setup), Limits(),
                  progress=lambda n, reports: progress.append((n, reports)))
    # begin once; next before each execution and once more to learn there is none
    assert s.calls == ["begin", "next", "setup", "end done 5", "next", "setup",
                       "end done 5", "next"]
    assert progress == [(1, 0), (2, 0)]
    assert res.strategy == "countdown" and res.executions == 2 and res.classes == 1
    assert not res.complete         # not exhaustive: never complete


def test_a_limit_at_the_last_execution_leaves_an_exhaustive_search_complete():
    bodies, setup = two_writers()
    for strategy in (Naive(), Dpor()):
        full = strategy.explore(lambda: Prog(bodies, setup), Limits())
        n = full.executions
        assert full.complete and n == (10 if isinstance(strategy, Naive) else 3)
        assert full.classes == 3
    for make, n in ((Naive, 10), (Dpor, 3)):
        at_last = make().explore(lambda: Prog(bodies, setup), Limits(max_executions=n))
        before = make().explore(lambda: Prog(bodies, setup), Limits(max_executions=n - 1))
        assert at_last.complete and not before.complete


def _seq(*events):
    """A wakeup sequence: (task index, name, key, clock) per event, all writes."""
    out = []
    for t, name, key, clock in events:
        op = Op(None, WRITE, f"{name} w{key}")
        op.key = key
        out.append(SeqEvent(t, name, op, clock, clock[t], (), 0))
    return out


def test_insert_adds_a_new_branch_and_drops_what_a_sleeping_task_or_a_leaf_covers():
    tree: list = []
    placed = insert(tree, _seq((0, "a", 1, (1, 0)), (1, "b", 1, (1, 1))), 5)
    assert placed is not None and placed[0] is tree and placed[1] is tree[0]
    assert [tree[0].step.task, tree[0].children[0].step.task] == ["a", "b"]
    # a sequence the tree's leaf a.b is a prefix of: covered
    assert insert(tree, _seq((0, "a", 1, (1, 0)), (1, "b", 1, (1, 1)),
                             (2, "c", 2, (1, 1, 1))), 5) is None
    # one that starts with c (independent of a: c is an initial): a new root branch
    placed = insert(tree, _seq((2, "c", 2, (0, 0, 1)),), 5)
    assert placed[0] is tree and [b.step.task for b in tree] == ["a", "c"]
    # c asleep at the state: whatever starts with c is covered by its subtree
    op_c = Op(None, WRITE, "c")
    op_c.key = 2
    assert insert([], _seq((2, "c", 2, (0, 0, 1)),), 5, ({"c": op_c},)) is None
    # b's write depends on a's (same key, b happens after a): b is no initial, so a
    # sleeping b does not cover a.b
    op_b = Op(None, WRITE, "b")
    op_b.key = 1
    assert insert([], _seq((0, "a", 1, (1, 0)), (1, "b", 1, (1, 1))), 5,
                  ({"b": op_b},)) is not None
