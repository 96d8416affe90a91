"""kernel/sched/core.c and include/linux/sched.h: task state, preemption and the
might_sleep family of checks.

``task_struct`` is the model's per-task state; the engine task that runs it keeps it as
``ctx``.  Sleeping is an op that is enabled only once the task's state is TASK_RUNNING
again, so a missing wake-up shows as a task that can never run.
"""

from __future__ import annotations

from ...engine import LOCAL, READ, WRITE, Op, TaskKilled, Wait, current_execution, \
    current_task
from ..lib.dump_stack import dump_stack, report_splat
from .core import call_trace, culprit, kernel, kfunc

TASK_RUNNING = 0x0000
TASK_INTERRUPTIBLE = 0x0001
TASK_UNINTERRUPTIBLE = 0x0002
TASK_WAKEKILL = 0x0100
TASK_NOLOAD = 0x0400
TASK_RTLOCK_WAIT = 0x1000
TASK_KILLABLE = TASK_WAKEKILL | TASK_UNINTERRUPTIBLE
TASK_NORMAL = TASK_INTERRUPTIBLE | TASK_UNINTERRUPTIBLE
TASK_IDLE = TASK_UNINTERRUPTIBLE | TASK_NOLOAD

PREEMPT_OFFSET = 1
SOFTIRQ_DISABLE_OFFSET = 0x200
MIGHT_RESCHED_RCU_SHIFT = 8
MIGHT_RESCHED_PREEMPT_MASK = (1 << MIGHT_RESCHED_RCU_SHIFT) - 1


class task_struct:
    """The fields of struct task_struct that the protocol touches."""

    def __init__(self, comm: str, pid: int, cpu: int, mm=None, kthread: bool = False):
        self.comm = comm
        self.cname = comm
        self.pid = pid
        self.cpu = cpu
        self.mm = mm
        self.kthread = kthread
        self.state = TASK_RUNNING
        self.preempt_count = 0
        self.irqs_disabled = 0
        self.non_block_count = 0
        self.rcu_read_lock_nesting = 0
        self.migration_disabled = 0
        self.held_locks: list = []        # lockdep's view: HeldLock entries, oldest first
        self.sigkill_pending = False      # SIGKILL in the pending set (and TIF_SIGPENDING)
        self.alloc_lock = None            # task_lock(); set by whoever builds the task
        self.signal = None                # the thread group's signal_struct
        self.files = None                 # the files_struct, shared with CLONE_FILES
        self.task_works: list = []        # kernel/task_work.c: work run on the way out
        self.exiting = False              # PF_EXITING: in do_exit
        self.exited = False               # past exit_notify

    def __repr__(self):
        return f"<task_struct {self.comm}:{self.pid}>"


class Blocked(Wait):
    """A wait the hung-task and soft-lockup detectors can classify: ``how`` is the task
    state while blocked ('D' TASK_UNINTERRUPTIBLE, 'K' TASK_KILLABLE, 'S'
    TASK_INTERRUPTIBLE, 'I' TASK_IDLE, 'R' spinning, 'rtlock' an RT lock wait, 'U' a
    thread running in userspace until a signal brings it back)."""

    __slots__ = ("how",)

    def __init__(self, obj, kind, label, ready, how):
        super().__init__(obj, kind, label, ready)
        self.how = how


def current() -> task_struct:
    return current_task().ctx


def in_atomic(ts: task_struct) -> bool:
    return ts.preempt_count != 0


# -- preemption -----------------------------------------------------------------------

def _own_steps() -> int:
    t = current_task()
    return current_execution().steps_taken(t)


def preempt_disable() -> None:
    ts = current()
    if ts.preempt_count == 0:
        ts.nonpreempt_since = _own_steps()
    ts.preempt_count += PREEMPT_OFFSET


def preempt_enable() -> None:
    """Also measures the section that ends here, in the task's own modelled steps: the
    longest one is reported with every check (how long a CPU cannot be preempted)."""
    ts = current()
    ts.preempt_count -= PREEMPT_OFFSET
    if ts.preempt_count < 0:
        raise AssertionError(f"preempt_count underflow in {ts.comm}")
    if ts.preempt_count == 0:
        n = _own_steps() - ts.nonpreempt_since
        k = kernel()
        if n > k.longest_nonpreempt[0]:
            k.longest_nonpreempt = (n, ts.comm, culprit(call_trace(), ts.comm))


def rcu_preempt_depth() -> int:
    return current().rcu_read_lock_nesting


# -- the might_sleep family -----------------------------------------------------------

def __might_resched(file: str, line: int, offsets: int = 0) -> None:
    """kernel/sched/core.c: __might_resched: the splat when a possibly-sleeping call is
    made where sleeping is forbidden (atomic, irqs off, or a non_block section)."""
    k = kernel()
    if not k.config.DEBUG_ATOMIC_SLEEP:
        return
    ts = current()
    offs = ts.preempt_count + (ts.rcu_read_lock_nesting << MIGHT_RESCHED_RCU_SHIFT)
    if offs == offsets and not ts.irqs_disabled and ts.non_block_count == 0:
        return
    if k.might_resched_printed:     # prev_jiffy rate limit: one report per HZ
        return
    k.might_resched_printed = True
    trace = ["__might_resched"] + call_trace()
    expected_rcu = offsets >> MIGHT_RESCHED_RCU_SHIFT
    lines = [
        f"BUG: sleeping function called from invalid context at {file}:{line}",
        f"in_atomic(): {int(in_atomic(ts))}, irqs_disabled(): {int(bool(ts.irqs_disabled))}, "
        f"non_block: {ts.non_block_count}, pid: {ts.pid}, name: {ts.comm}",
        f"preempt_count: {ts.preempt_count:x}, expected: {offsets & MIGHT_RESCHED_PREEMPT_MASK:x}",
        f"RCU nest depth: {ts.rcu_read_lock_nesting}, expected: {expected_rcu}",
    ]
    lines += held_locks_lines(ts)
    lines += dump_stack(ts, trace)
    k.tainted = True
    report_splat("sleep-in-atomic", lines[0].split(" at ")[0], lines, ts, trace)


def might_sleep(file: str, line: int) -> None:
    """include/linux/kernel.h: might_sleep -> __might_sleep -> __might_resched."""
    __might_resched(file, line, 0)


def held_locks_lines(ts: task_struct) -> list[str]:
    if not kernel().config.PROVE_LOCKING or not ts.held_locks:
        return []
    out = [f"{len(ts.held_locks)} lock{'s' if len(ts.held_locks) > 1 else ''} held by "
           f"{ts.comm}/{ts.pid}:"]
    for i, h in enumerate(ts.held_locks):
        out.append(f" #{i}: ({h.cls}){{{h.usage()}}}, at: {h.where}")
    return out


# -- sleeping and waking --------------------------------------------------------------

async def set_current_state(state: int) -> None:
    """include/linux/sched.h: set_current_state: a store of the state with a full barrier
    (barrier A, paired with the waker's barrier B)."""
    ts = current()
    await Op(ts, WRITE, f"set_current_state({_state_name(state)})")
    ts.state = state


def __set_current_state(state: int) -> None:
    current().state = state


@kfunc("kernel/sched/core.c", primitive=True)
async def schedule() -> None:
    """kernel/sched/core.c: schedule: schedule_debug's checks, then sleep until a wake-up
    makes the task runnable again (a TASK_RUNNING task comes straight back)."""
    ts = current()
    k = kernel()
    if k.config.DEBUG_ATOMIC_SLEEP and ts.state != TASK_RUNNING and ts.non_block_count:
        lines = [f"BUG: scheduling in a non-blocking section: {ts.comm}/{ts.pid}/"
                 f"{ts.non_block_count}"] + dump_stack(ts, call_trace())
        report_splat("sleep-in-atomic", lines[0].split(":")[0] + ": scheduling in a "
                     "non-blocking section", lines, ts, call_trace())
    if ts.preempt_count:
        __schedule_bug(ts)
    if ts.state == TASK_RUNNING:
        return
    how = _how(ts.state)
    await Blocked(ts, READ, f"schedule() [{_state_name(ts.state)}]",
                  lambda: ts.state == TASK_RUNNING, how)


def __schedule_bug(ts: task_struct) -> None:
    """kernel/sched/core.c: __schedule_bug: "BUG: scheduling while atomic"."""
    trace = ["__schedule_bug"] + call_trace()
    lines = [f"BUG: scheduling while atomic: {ts.comm}/{ts.pid}/0x{ts.preempt_count:08x}"]
    lines += held_locks_lines(ts) + dump_stack(ts, trace)
    report_splat("scheduling-while-atomic", "BUG: scheduling while atomic", lines, ts, trace)


async def wake_up_process(p: task_struct) -> bool:
    """kernel/sched/core.c: wake_up_process -> try_to_wake_up(p, TASK_NORMAL): wakes an
    interruptible, uninterruptible or killable sleeper."""
    await Op(p, WRITE, f"wake_up_process({p.comm})")
    return wake_up_state_locked(p, TASK_NORMAL)


async def wake_up_state(p: task_struct, state: int) -> bool:
    """kernel/sched/core.c: wake_up_state -> try_to_wake_up(p, state): wakes ``p`` only
    if its state has one of the bits of ``state``."""
    await Op(p, WRITE, f"wake_up_state({p.comm}, {_state_name(state)})")
    return wake_up_state_locked(p, state)


def wake_up_state_locked(p: task_struct, state: int) -> bool:
    """The state test and change of try_to_wake_up, for a caller whose own step already
    touched ``p`` (signal_wake_up): ttwu_state_match, then TASK_RUNNING."""
    if p.state & state:
        p.state = TASK_RUNNING
        return True
    return False


@kfunc("kernel/time/sleep_timeout.c")
async def schedule_timeout_idle(label: str) -> None:
    """kernel/time/sleep_timeout.c: schedule_timeout_idle: sleep in TASK_IDLE until the
    timeout fires.  Time is not modelled: the timeout is a step that can happen at any
    point, which is every order the real delay allows."""
    ts = current()
    if ts.preempt_count:
        __schedule_bug(ts)
    await Op(None, LOCAL, f"schedule_timeout_idle({label})")


@kfunc("kernel/sched/core.c")
async def cond_resched() -> None:
    """A voluntary preemption point: nothing another task can observe."""
    might_sleep("kernel/sched/core.c", 0)


def fatal_signal_pending(ts: task_struct) -> bool:
    """include/linux/sched/signal.h: fatal_signal_pending: SIGKILL is pending."""
    return ts.sigkill_pending


def sigpending(ts: task_struct) -> tuple:
    """The object of a task's pending signals (t->pending, TIF_SIGPENDING): signal
    delivery writes it, fatal_signal_pending() and a wait for a signal read it.  Kept
    apart from the task's state, which schedule() and wake-ups touch."""
    return (ts, "pending")


def signal_pending_state(state: int, p: task_struct) -> bool:
    """include/linux/sched/signal.h: signal_pending_state: whether a sleeper in
    ``state`` must give up: any signal for TASK_INTERRUPTIBLE, a fatal one for
    TASK_WAKEKILL (TASK_KILLABLE), never for plain TASK_UNINTERRUPTIBLE.  (The model has
    only fatal signals.)"""
    if not state & (TASK_INTERRUPTIBLE | TASK_WAKEKILL):
        return False
    return fatal_signal_pending(p)


def do_exit_now() -> None:
    """End the running task where it stands (a killed task, BUG())."""
    raise TaskKilled()


def _how(state: int) -> str:
    """How ps (and khungtaskd) see a sleeper: 'I' idle (TASK_NOLOAD), 'K' killable
    (TASK_WAKEKILL: ps shows D, khungtaskd skips it), 'D' uninterruptible, 'S'
    interruptible."""
    if state & TASK_NOLOAD:
        return "I"
    if state & TASK_UNINTERRUPTIBLE:
        return "K" if state & TASK_WAKEKILL else "D"
    return "S"


def _state_name(state: int) -> str:
    names = {TASK_RUNNING: "TASK_RUNNING", TASK_INTERRUPTIBLE: "TASK_INTERRUPTIBLE",
             TASK_UNINTERRUPTIBLE: "TASK_UNINTERRUPTIBLE", TASK_IDLE: "TASK_IDLE",
             TASK_KILLABLE: "TASK_KILLABLE"}
    return names.get(state, hex(state))


def task_name() -> str:
    return current_task().name
