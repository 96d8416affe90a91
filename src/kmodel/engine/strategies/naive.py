"""Every interleaving, no reduction: the yardstick DPOR is measured and tested against."""

from __future__ import annotations

from ..execution import Execution, Task
from ..explore import Strategy


class Naive(Strategy):
    name = "naive"
    exhaustive = True

    def __init__(self):
        # per step: [alternatives, index taken, choices given, choice prefixes to do,
        #            first run of this entry]
        self.path: list[list] = []
        self.replay_len = 0
        self.last: Execution | None = None
        self.reuse_prefix = True

    def prefix(self):
        if not self.reuse_prefix or self.last is None or self.replay_len == 0:
            return None
        return self.last, [(e[0][e[1]], e[2]) for e in self.path[:self.replay_len]]

    def pick(self, ex: Execution, enabled: list[Task]):
        i = ex.nsteps
        if i == len(self.path):
            self.path.append([[t.name for t in enabled], 0, (), [], True])
        e = self.path[i]
        return ex.by_name[e[0][e[1]]], e[2]

    def after_step(self, ex, task, used) -> None:
        e = self.path[ex.nsteps - 1]
        if e[4]:
            e[4] = False
            explicit = len(e[2])
            for k in range(len(used) - 1, explicit - 1, -1):
                prefix = tuple(v for _, v in used[:k])
                e[3].extend(prefix + (v,) for v in range(used[k][0] - 1, 0, -1))

    def _next(self) -> bool:
        while self.path:
            e = self.path[-1]
            if e[3]:
                e[2] = e[3].pop()
                e[4] = True
                self.replay_len = len(self.path) - 1
                return True
            if e[1] + 1 < len(e[0]):
                self.path[-1] = [e[0], e[1] + 1, (), [], True]
                self.replay_len = len(self.path) - 1
                return True
            self.path.pop()
        return False

    def next_execution(self) -> bool:
        return self.last is None or self._next()

    def after_execution(self, ex: Execution) -> None:
        self.last = ex
