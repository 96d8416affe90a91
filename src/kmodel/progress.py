"""How far a running check has got: what ``run_check(progress=...)`` is called with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Progress:
    """What a running check has done so far; passed to ``run_check(progress=...)``."""
    executions: int = 0      # executions finished
    reports: int = 0         # distinct reports among them (kind, function, title)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def watched(factory, progress):
    """The scenario factory, counting executions: the engine calls it once per execution,
    and the program it made last time holds that execution (``program.ex``)."""
    state = Progress()
    keys: set = set()
    last = [None]

    def make():
        prev = last[0]
        if prev is not None:
            state.executions += 1
            ex = getattr(prev, "ex", None)
            for r in getattr(ex, "reports", ()):
                keys.add(r.key())
            state.reports = len(keys)
            progress(state)
        last[0] = program = factory()
        return program
    return make


__all__ = ["Progress", "watched"]
