"""kernel/locking/lockdep.c: lock classes, held-lock stacks, the dependency graph.

The graph is global to the execution, built from every task's acquisitions, so a
circular dependency is reported even in an execution that did not deadlock, as lockdep
does.  Recursive-read acquisitions (SRCU readers) follow lockdep's "strong path" rule: a
cycle that enters a lock by a recursive read and leaves it from a recursive-read hold is
no deadlock.  The first report turns lockdep off (debug_locks_off), as in the kernel.

Each lock type carries lockdep's wait types (include/linux/lockdep_types.h, set by the
*_DEP_MAP_INIT / *_init macros): ``wait_type_inner`` is the context the lock presents to
what nests inside it, ``wait_type_outer`` the context it needs (0: the inner one).
check_wait_context() compares them at every acquisition: "BUG: Invalid wait context".
With PROVE_RAW_LOCK_NESTING, LD_WAIT_CONFIG (spinlock_t, rwlock_t: locks that sleep on
PREEMPT_RT) is its own level above LD_WAIT_SPIN (raw_spinlock_t), so a non-RT build
reports a spinlock_t taken under a raw_spinlock_t -- the PREEMPT_RT bug, found without RT.

Simplified: there are no interrupt contexts in the model, so every check starts at the
bottom of the held-lock stack and task_wait_context() is LD_WAIT_MAX; the
rcu_read_lock() pseudo-lock (rcu_lock_map) is not on the held-lock stack.
"""

from __future__ import annotations

from ...lib.dump_stack import UTS_RELEASE, dump_stack, print_tainted, report_splat
from ..core import call_trace, culprit, kernel
from ..sched import current, held_locks_lines

RECURSIVE_READ = 2

# enum lockdep_wait_type (include/linux/lockdep_types.h), by name; the numbers depend on
# PROVE_RAW_LOCK_NESTING (without it LD_WAIT_CONFIG is LD_WAIT_SPIN): see wait_value().
LD_WAIT_INV = "LD_WAIT_INV"        # not checked (SRCU, lockdep_map pseudo-locks)
LD_WAIT_FREE = "LD_WAIT_FREE"      # wait-free (RCU's outer type)
LD_WAIT_SPIN = "LD_WAIT_SPIN"      # spins: raw_spinlock_t
LD_WAIT_CONFIG = "LD_WAIT_CONFIG"  # spins without PREEMPT_RT, sleeps with it: spinlock_t
LD_WAIT_SLEEP = "LD_WAIT_SLEEP"    # may sleep: mutex, rw_semaphore
LD_WAIT_MAX = "LD_WAIT_MAX"        # task context: anything may be taken


def wait_value(name: str, prove_raw_lock_nesting: bool) -> int:
    """The enum value of a wait type under the configuration."""
    order = [LD_WAIT_INV, LD_WAIT_FREE, LD_WAIT_SPIN]
    if prove_raw_lock_nesting:
        order.append(LD_WAIT_CONFIG)
    order += [LD_WAIT_SLEEP, LD_WAIT_MAX]
    if name == LD_WAIT_CONFIG and not prove_raw_lock_nesting:
        name = LD_WAIT_SPIN
    return order.index(name)


class lockdep_map:
    """include/linux/lockdep_types.h: struct lockdep_map used as a pseudo-lock
    (STATIC_LOCKDEP_MAP_INIT): no wait type, so check_wait_context() skips it."""
    lock_type = "lockdep_map"
    wait_type_inner = LD_WAIT_INV
    wait_type_outer = LD_WAIT_INV

    def __init__(self, name: str):
        self.name = name
        self.cname = name

    def __repr__(self):
        return f"<lockdep_map {self.name}>"


def lock_map_acquire(lock_map: lockdep_map) -> None:
    """include/linux/lockdep.h: lock_map_acquire: an exclusive, checked acquisition of a
    pseudo-lock (lock_acquire_exclusive)."""
    kernel().lockdep.acquire(lock_map.name, 0, lock_map)


def lock_map_release(lock_map: lockdep_map) -> None:
    kernel().lockdep.release(lock_map.name, lock_map)


class HeldLock:
    __slots__ = ("cls", "read", "where", "lock")

    def __init__(self, cls, read, where, lock):
        self.cls = cls
        self.read = read
        self.where = where
        self.lock = lock

    def usage(self) -> str:
        return ".+.+" if self.read else "+.+."

    def wait_types(self, prove_raw: bool) -> tuple[int, int]:
        """(outer, inner) as print_lock_name() shows them: "-{outer:inner}"."""
        inner = wait_value(getattr(self.lock, "wait_type_inner", LD_WAIT_INV), prove_raw)
        outer = wait_value(getattr(self.lock, "wait_type_outer", LD_WAIT_INV), prove_raw)
        return (outer or inner, inner)


class Lockdep:
    def __init__(self, kernel):
        self.kernel = kernel
        self.debug_locks = True
        # prev class -> next class -> (prev read type, next read type, where recorded)
        self.deps: dict[str, dict[str, list]] = {}

    @property
    def on(self) -> bool:
        return self.kernel.config.PROVE_LOCKING and self.debug_locks

    def acquire(self, cls: str, read: int, lock, check: bool = True,
                trylock: bool = False) -> None:
        """lock_acquire(): validate, then push the lock on the task's held stack."""
        ts = current()
        where = culprit(call_trace(), ts.comm)
        new = HeldLock(cls, read, where, lock)
        if self.on and check:
            if not self._check_wait_context(ts, new, trylock):
                return self._push(ts, new)
            if not self._check_deadlock(ts, new):
                return self._push(ts, new)
            if not trylock:
                self._check_prevs_add(ts, new)
        self._push(ts, new)

    def _push(self, ts, new: HeldLock) -> None:
        ts.held_locks.append(new)

    def release(self, cls: str, lock) -> None:
        ts = current()
        for i in range(len(ts.held_locks) - 1, -1, -1):
            if ts.held_locks[i].lock is lock:
                del ts.held_locks[i]
                return

    def sync(self, cls: str, lock) -> None:
        """lock_sync(): an empty write-side critical section, validated like a write
        acquire and released at once (SRCU's synchronize_srcu annotation since v6.4)."""
        if not self.on:
            return
        ts = current()
        new = HeldLock(cls, 0, culprit(call_trace(), ts.comm), lock)
        if self._check_deadlock(ts, new):
            self._check_prevs_add(ts, new)

    def record_dependency(self, prev_cls: str, next_cls: str, where: str) -> None:
        """A dependency recorded outside any explored task (a priming done at set-up,
        such as __mmu_notifier_register's fs_reclaim -> invalidate_range_start)."""
        if self.on:
            self.deps.setdefault(prev_cls, {}).setdefault(next_cls, ["N", "N", where])

    # -- checks -------------------------------------------------------------------

    def _check_wait_context(self, ts, new: HeldLock, trylock: bool) -> bool:
        """lockdep.c: check_wait_context: the lock's outer wait type must not exceed the
        smallest inner wait type of the locks held (in task context, LD_WAIT_MAX).
        Trylocks and locks with no wait type are not checked.  False when it reported."""
        prove_raw = self.kernel.config.PROVE_RAW_LOCK_NESTING
        next_outer, next_inner = new.wait_types(prove_raw)
        if not next_inner or trylock:
            return True
        curr_inner = wait_value(LD_WAIT_MAX, prove_raw)      # task_wait_context()
        for prev in ts.held_locks:
            _, prev_inner = prev.wait_types(prove_raw)
            if prev_inner:
                curr_inner = min(curr_inner, prev_inner)
        if next_outer > curr_inner:
            self._report_invalid_wait_context(ts, new)
            return False
        return True

    def _check_deadlock(self, ts, new: HeldLock) -> bool:
        """check_deadlock(): the same class already held, unless read-after-read with the
        new one a recursive read.  Returns False when it reported."""
        for prev in ts.held_locks:
            if prev.cls != new.cls:
                continue
            if new.read == RECURSIVE_READ and prev.read:
                continue
            self._report_recursive(ts, prev, new)
            return False
        return True

    def _check_prevs_add(self, ts, new: HeldLock) -> None:
        if not ts.held_locks:
            return
        prev = ts.held_locks[-1]
        if prev.cls == new.cls:
            return
        ptype = "R" if prev.read == RECURSIVE_READ else "N"
        ntype = "R" if new.read == RECURSIVE_READ else "N"
        chain = self._strong_path(new.cls, ntype, prev.cls, ptype)
        if chain is not None:
            self._report_circular(ts, prev, new, chain)
            return
        edges = self.deps.setdefault(prev.cls, {})
        if new.cls not in edges:
            edges[new.cls] = [ptype, ntype, f"{prev.where} -> {new.where}"]

    def _strong_path(self, start, start_ntype, target, target_ptype):
        """A path start ->* target along recorded dependencies that never enters a lock by
        a recursive read and leaves it from a recursive-read hold."""
        frontier = [(start, start_ntype == "R", [start])]
        seen = set()
        while frontier:
            node, arrived_r, path = frontier.pop(0)
            if node == target and len(path) > 1:
                if not (arrived_r and target_ptype == "R"):
                    return path
                continue
            if (node, arrived_r) in seen:
                continue
            seen.add((node, arrived_r))
            for nxt, (ptype, ntype, _) in self.deps.get(node, {}).items():
                if arrived_r and ptype == "R":
                    continue
                frontier.append((nxt, ntype == "R", path + [nxt]))
        return None

    # -- reports ------------------------------------------------------------------

    def _header(self, ts, title: str, bar: str) -> list[str]:
        return ["", bar, f"WARNING: {title}", f"{UTS_RELEASE} #1 {print_tainted()}",
                "-" * len(bar)]

    def _report_recursive(self, ts, prev: HeldLock, new: HeldLock) -> None:
        bar = "=" * 44
        lines = self._header(ts, "possible recursive locking detected", bar)
        lines += [f"{ts.comm}/{ts.pid} is trying to acquire lock:",
                  f"({new.cls}){{{new.usage()}}}-{{0:0}}, at: {new.where}", "",
                  "but task is already holding lock:",
                  f"({prev.cls}){{{prev.usage()}}}-{{0:0}}, at: {prev.where}", "",
                  "other info that might help us debug this:",
                  " Possible unsafe locking scenario:", "",
                  "       CPU0", "       ----", f"  lock({prev.cls});", f"  lock({new.cls});",
                  "", " *** DEADLOCK ***", "",
                  " May be due to missing lock nesting notation", ""]
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + dump_stack(ts, call_trace())
        self._emit("lockdep-recursive", f"possible recursive locking detected: {new.cls}",
                   ts, new.where, lines)

    def _report_circular(self, ts, prev: HeldLock, new: HeldLock, chain: list[str]) -> None:
        bar = "=" * 54
        lines = self._header(ts, "possible circular locking dependency detected", bar)
        lines += [f"{ts.comm}/{ts.pid} is trying to acquire lock:",
                  f"({new.cls}){{{new.usage()}}}, at: {new.where}", "",
                  "but task is already holding lock:",
                  f"({prev.cls}){{{prev.usage()}}}, at: {prev.where}", "",
                  "which lock already depends on the new lock.", "",
                  "the existing dependency chain (in reverse order) is:", ""]
        for i in range(len(chain) - 1, 0, -1):
            a, b = chain[i - 1], chain[i]
            lines += [f"-> #{i} ({b}):", f"       {self.deps[a][b][2]}", ""]
        lines += [f"-> #0 ({new.cls}):", f"       {new.where}", "",
                  "other info that might help us debug this:", "",
                  " Possible unsafe locking scenario:", "",
                  "       CPU0                    CPU1",
                  "       ----                    ----",
                  f"  lock({prev.cls});",
                  f"                               lock({new.cls});",
                  f"                               lock({prev.cls});",
                  f"  lock({new.cls});", "", " *** DEADLOCK ***", ""]
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + dump_stack(ts, call_trace())
        pair = " <-> ".join(sorted((prev.cls, new.cls)))
        self._emit("lockdep-circular",
                   f"possible circular locking dependency detected: {pair}", ts, new.where,
                   lines)

    def _lock_line(self, h: HeldLock) -> str:
        """print_lock(): "(name){usage}-{outer:inner}, at: where"."""
        outer, inner = h.wait_types(self.kernel.config.PROVE_RAW_LOCK_NESTING)
        return f"({h.cls}){{{h.usage()}}}-{{{outer}:{inner}}}, at: {h.where}"

    def _report_invalid_wait_context(self, ts, new: HeldLock) -> None:
        """lockdep.c: print_lock_invalid_wait_context."""
        bar = "=" * 29
        ctx = wait_value(LD_WAIT_MAX, self.kernel.config.PROVE_RAW_LOCK_NESTING)
        lines = ["", bar, "[ BUG: Invalid wait context ]", f"{UTS_RELEASE} #1 {print_tainted()}",
                 "-" * len(bar), f"{ts.comm}/{ts.pid} is trying to lock:",
                 self._lock_line(new), "other info that might help us debug this:",
                 f"context-{{{ctx}:{ctx}}}"]
        n = len(ts.held_locks)
        lines.append(f"{n} lock{'s' if n != 1 else ''} held by {ts.comm}/{ts.pid}:")
        lines += [f" #{i}: {self._lock_line(h)}" for i, h in enumerate(ts.held_locks)]
        lines += ["stack backtrace:"] + dump_stack(ts, call_trace())
        self._emit("lockdep-wait-context", f"BUG: Invalid wait context: {new.cls}", ts,
                   new.where, lines)

    def rcu_suspicious(self, file: str, line: int, s: str) -> None:
        """lockdep.c: lockdep_rcu_suspicious, reached from RCU_LOCKDEP_WARN (PROVE_RCU,
        which is def_bool PROVE_LOCKING).  RCU_LOCKDEP_WARN is silent once lockdep is off
        (debug_lockdep_rcu_enabled) and warns once per call site (its static __warned);
        the report itself leaves lockdep on."""
        if not self.on:
            return
        site = (file, line, s)
        warned = self.kernel.warned_once
        if site in warned:
            return
        warned.add(site)
        ts = current()
        bar = "=" * 29
        lines = self._header(ts, "suspicious RCU usage", bar)
        lines += [f"{file}:{line} {s}!", "", "other info that might help us debug this:", "",
                  "", "rcu_scheduler_active = 2, debug_locks = 1"]
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + dump_stack(ts, call_trace())
        report_splat("warn", f"WARNING: suspicious RCU usage: {file}: {s}", lines, ts,
                     call_trace())

    def _emit(self, kind, title, ts, where, lines) -> None:
        self.debug_locks = False        # debug_locks_off(): lockdep reports once
        report_splat(kind, title, lines, ts, call_trace(), where)
