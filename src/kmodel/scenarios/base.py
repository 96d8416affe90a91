"""The program the engine runs: a kernel instance, its tasks, and what must hold.

Every scenario is a KernelProgram: ``build()`` makes the initial state, ``tasks()`` names
the tasks and their entry coroutines, and ``invariants()`` lists the named properties
checked when the execution ends.  The engine calls start/at_deadlock/at_livelock/at_end.
"""

from __future__ import annotations

from ..engine import Report
from ..linux.kernel.state import Kernel
from ..linux.kernel.hung_task import QUIET_STATES, report_stuck_tasks
from ..linux.kernel.sched import task_struct


class KernelProgram:
    def __init__(self, config, arch: str = "x86"):
        self.config = config
        self.arch = arch
        self.kernel: Kernel | None = None

    # -- what a scenario provides ----------------------------------------------------

    def build(self) -> None:
        """Create the initial kernel state (objects on self)."""

    def tasks(self) -> list[tuple[str, object, dict]]:
        """(task name, coroutine function taking the program, task_struct fields)."""
        return []

    def invariants(self) -> list:
        """Named checks run at the end: callables (program, ex) -> None that report."""
        return []

    # -- the engine's interface ------------------------------------------------------

    def start(self, ex) -> None:
        self.kernel = Kernel(self.config, self.arch)
        self.ex = ex
        self.build()
        for name, fn, fields in self.tasks():
            self.spawn(ex, name, fn(self), **fields)

    def spawn(self, ex, name: str, coro, comm: str | None = None, **fields):
        ts = task_struct(comm or name, self.kernel.alloc_pid(), len(ex.tasks))
        for k, v in fields.items():
            setattr(ts, k, v)
        return ex.spawn(name, coro, ctx=ts)

    def at_deadlock(self, ex, blocked) -> None:
        """Tasks idle in an interruptible, killable or idle sleep (a kthread waiting for
        work, a process in ppoll) or back in userspace are how a quiet system looks: that
        is quiescence, not a hang (khungtaskd reports none of them)."""
        if all(getattr(t.pending, "how", "?") in QUIET_STATES for t in blocked):
            ex.outcome = "done"
            return
        report_stuck_tasks(ex, blocked)

    def at_livelock(self, ex) -> None:
        spinning = [t.name for t in ex.live_tasks()]
        ex.report(Report("livelock", "livelock: the step budget ran out",
                         ",".join(spinning), spinning[0] if spinning else "", [],
                         f"kmodel: livelock: {ex.max_steps} steps and still running: "
                         f"{', '.join(spinning)}"))

    def at_end(self, ex) -> None:
        for check in self.invariants():
            check(self, ex)
        self.measure(ex)

    def measure(self, ex) -> None:
        """Numbers reported with every check (min and max over the executions)."""
        ex.metrics["longest_nonpreemptible_steps"] = self.kernel.longest_nonpreempt[0]

    def on_data_race(self, ex, earlier, later) -> None:
        if not self.config.KCSAN:
            return
        a, b = earlier, later
        ta, tb = ex.tasks[a.task], ex.tasks[b.task]
        fa = a.frames[-1] if a.frames else ta.name
        fb = b.frames[-1] if b.frames else tb.name
        kind_a = "write" if a.write else "read"
        kind_b = "write" if b.write else "read"
        bar = "=" * 66
        lines = [bar, f"BUG: KCSAN: data-race in {fa} / {fb}", "",
                 f"{kind_a} to {a.label} by task {ta.ctx.pid} on cpu {ta.index}:"]
        lines += [f" {f}" for f in reversed(a.frames)] + [""]
        lines += [f"{kind_b} to {b.label} by task {tb.ctx.pid} on cpu {tb.index}:"]
        lines += [f" {f}" for f in reversed(b.frames)] + [bar]
        ex.report(Report("data-race", f"BUG: KCSAN: data-race in {fa} / {fb}", tb.name, fb,
                         list(reversed(b.frames)), "\n".join(lines)))
