"""Lock holds read off a trace's op labels.

An execution's trace is a list of (task, modelled function, op label).  The model labels
its lock operations the way the kernel spells them -- ``spin_lock(&kvm->mn_invalidate_lock)``,
``down_read(&qemu_mm->mmap_lock)``, ``srcu_read_lock(&kvm->srcu)`` -- so a hold is an
acquire label and the next matching release label of the same task and lock.  A trylock
counts only when a matching release follows (otherwise it failed, or the label cannot
tell); a lock still held when the execution ends is held to the last step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*$")
_VARIANT = re.compile(r"(_irqsave|_irq|_bh|_nested|_nest_lock|_killable|_interruptible|"
                      r"_io|_expedited)+$")

# acquire -> release, after the variant suffixes are stripped
PAIRS = {
    "spin_lock": "spin_unlock",
    "raw_spin_lock": "raw_spin_unlock",
    "rt_spin_lock": "rt_spin_unlock",
    "read_lock": "read_unlock",
    "write_lock": "write_unlock",
    "mutex_lock": "mutex_unlock",
    "rt_mutex_lock": "rt_mutex_unlock",
    "down_read": "up_read",
    "down_write": "up_write",
    "srcu_read_lock": "srcu_read_unlock",
    "rcu_read_lock": "rcu_read_unlock",
    "mmap_read_lock": "mmap_read_unlock",
    "mmap_write_lock": "mmap_write_unlock",
}
_TRY = {
    "spin_trylock": "spin_lock", "raw_spin_trylock": "raw_spin_lock",
    "read_trylock": "read_lock", "write_trylock": "write_lock",
    "mutex_trylock": "mutex_lock", "down_read_trylock": "down_read",
    "down_write_trylock": "down_write", "mmap_read_trylock": "mmap_read_lock",
}
_RELEASES = {rel: acq for acq, rel in PAIRS.items()}
SHARED = {"read_lock", "down_read", "srcu_read_lock", "rcu_read_lock", "mmap_read_lock"}


@dataclass
class LockHold:
    task: str
    lock: str            # the argument as labelled: "&kvm->mn_invalidate_lock"
    how: str             # the acquire, variant stripped: "spin_lock", "down_read", ...
    start: int           # step of the acquire
    end: int             # step of the release; the last step if never released
    released: bool = True

    @property
    def shared(self) -> bool:
        return self.how in SHARED

    def covers(self, step: int) -> bool:
        return self.start <= step <= self.end


def classify(label: str) -> tuple[str, str, str, bool] | None:
    """("acquire"|"release", base acquire name, lock, is_trylock), or None."""
    m = _CALL.match(label)
    if not m:
        return None
    fn, args = m.group(1), m.group(2)
    lock = args.split(",")[0].strip() if args else ""
    if fn in _TRY:
        return "acquire", _TRY[fn], lock, True
    base = _VARIANT.sub("", fn)
    if fn in PAIRS:
        base = fn
    if base in PAIRS:
        return "acquire", base, lock, False
    if fn in _RELEASES:
        return "release", _RELEASES[fn], lock, False
    if base in _RELEASES:
        return "release", _RELEASES[base], lock, False
    return None


def lock_holds(trace: list) -> list[LockHold]:
    """Every hold in the trace, ordered by its acquire step."""
    open_: dict[tuple[str, str, str], list[tuple[int, bool]]] = {}
    holds: list[LockHold] = []
    last = len(trace) - 1
    for step, entry in enumerate(trace):
        task, label = entry[0], entry[2]
        c = classify(label)
        if c is None:
            continue
        what, base, lock, is_try = c
        key = (task, base, lock)
        if what == "acquire":
            open_.setdefault(key, []).append((step, is_try))
        else:
            stack = open_.get(key)
            if stack:
                start, _ = stack.pop()
                holds.append(LockHold(task, lock, base, start, step))
    for (task, base, lock), stack in open_.items():
        for start, is_try in stack:
            if not is_try:
                holds.append(LockHold(task, lock, base, start, last, released=False))
    holds.sort(key=lambda h: (h.start, h.task))
    return holds


def held_at(holds: list[LockHold], task: str, step: int) -> list[LockHold]:
    return [h for h in holds if h.task == task and h.covers(step)]
