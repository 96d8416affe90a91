"""kernel/locking/lockdep.c: lock classes, held-lock stacks, the dependency graph.

The graph is global to the execution, built from every task's acquisitions, so a
circular dependency is reported even in an execution that did not deadlock, as lockdep
does.  Recursive-read acquisitions (SRCU readers) follow lockdep's "strong path" rule: a
cycle that enters a lock by a recursive read and leaves it from a recursive-read hold is
no deadlock.  The first report turns lockdep off (debug_locks_off), as in the kernel.
"""

from __future__ import annotations

from ....engine import Report, current_execution
from ..core import call_trace, culprit
from ..sched import current, format_call_trace, held_locks_lines

RECURSIVE_READ = 2


class HeldLock:
    __slots__ = ("cls", "read", "where", "lock")

    def __init__(self, cls, read, where, lock):
        self.cls = cls
        self.read = read
        self.where = where
        self.lock = lock

    def usage(self) -> str:
        return ".+.+" if self.read else "+.+."


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

    # -- checks -------------------------------------------------------------------

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
        taint = "Tainted: G        W" if self.kernel.tainted else "Not tainted"
        return ["", bar, f"WARNING: {title}", f"{self.kernel.RELEASE} #1 {taint}",
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
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + \
            self.kernel.banner(ts) + format_call_trace(call_trace())
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
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + \
            self.kernel.banner(ts) + format_call_trace(call_trace())
        pair = " <-> ".join(sorted((prev.cls, new.cls)))
        self._emit("lockdep-circular",
                   f"possible circular locking dependency detected: {pair}", ts, new.where,
                   lines)

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
        lines += held_locks_lines(ts) + ["", "stack backtrace:"] + \
            self.kernel.banner(ts) + format_call_trace(call_trace())
        current_execution().report(Report(
            "warn", f"WARNING: suspicious RCU usage: {file}: {s}", ts.comm,
            culprit(call_trace(), ts.comm), call_trace(), "\n".join(lines)))

    def _emit(self, kind, title, ts, where, lines) -> None:
        self.debug_locks = False        # debug_locks_off(): lockdep reports once
        current_execution().report(Report(kind, title, ts.comm, where, call_trace(),
                                          "\n".join(lines)))
