"""SRCU's two callback modes (kernel/rcu/srcutree.c): small -- one list, so a grace period
also orders the callbacks queued before it -- and big -- per-CPU lists invoked by
separate workers.  A synchronize_srcu() under a lock that an earlier callback needs
deadlocks only in the small mode, the default (a server below 128 CPUs).  (Callbacks run
with bottom halves off and cannot sleep: the one here spins.)"""

from helpers import named

from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor
from kmodel.linux.config import PRESETS
from kmodel.engine import READ, WRITE, Op
from kmodel.linux.kernel.sched import Blocked
from kmodel.linux.kernel.rcu.srcu import call_srcu, srcu_struct, synchronize_srcu
from kmodel.scenarios.base import KernelProgram


class Program(KernelProgram):
    def __init__(self, big: bool):
        super().__init__(PRESETS["nonrt"].set("SRCU_SIZE_BIG", big), "x86")

    def build(self):
        self.srcu = srcu_struct("srcu")
        self.cname = "subsys"
        self.ready = False
        self.log = []

    def tasks(self):
        return [("oom_reaper", queue_callback, {}), ("qemu", sync_under_lock, {})]


async def callback(p):
    # the callback waits for what the synchronizer does after its grace period
    await Blocked(p, READ, "while (!READ_ONCE(subsys->ready)) cpu_relax()",
                  lambda: p.ready, "R")
    p.log.append("callback")


@named
async def queue_callback(p):
    await call_srcu(p.srcu, callback, p, "callback")


@named
async def sync_under_lock(p):
    await synchronize_srcu(p.srcu)
    await Op(p, WRITE, "WRITE_ONCE(subsys->ready, 1)")
    p.ready = True


def explore(big: bool):
    return Dpor().explore(lambda: Program(big), Limits())


def test_small_srcu_grace_period_waits_for_earlier_callbacks():
    res = explore(big=False)
    assert res.complete
    assert sorted((r.kind, r.task) for r in res.reports) == [
        ("hung-task", "qemu"), ("soft-lockup", "kworker/srcu:callback")]
    q = next(r for r in res.reports if r.task == "qemu")
    assert "wait_for_completion(srcu grace period of srcu)" in q.text
    assert "__synchronize_srcu" in q.trace


def test_big_srcu_grace_period_does_not_wait_for_another_cpus_callbacks():
    res = explore(big=True)
    assert res.complete and res.reports == []
    assert res.executions >= 2


def test_small_is_the_default_in_both_presets():
    assert not PRESETS["rt"].SRCU_SIZE_BIG and not PRESETS["nonrt"].SRCU_SIZE_BIG
    assert "SRCU_SIZE_BIG=n" in PRESETS["nonrt"].describe()
