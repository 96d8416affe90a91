"""Every interleaving, no reduction: the yardstick DPOR is measured and tested against."""

from __future__ import annotations

from ..execution import Execution, Task
from ..explore import Collector, Limits, Result, run_execution


class Naive:
    name = "naive"

    def __init__(self):
        self.path: list[list] = []     # per step: [alternatives, index taken]

    def pick(self, ex: Execution, enabled: list[Task]):
        i = len(ex.trace)
        if i == len(self.path):
            self.path.append([[t.name for t in enabled], 0, ()])
        alts, k, choices = self.path[i]
        return ex.by_name[alts[k]], choices

    def after_step(self, ex, task, used) -> None:
        i = len(ex.trace) - 1
        entry = self.path[i]
        if used and len(entry) == 3:
            explicit = len(entry[2])
            todo = []
            for k in range(len(used) - 1, explicit - 1, -1):
                prefix = tuple(v for _, v in used[:k])
                todo.extend(prefix + (v,) for v in range(used[k][0] - 1, 0, -1))
            entry.append(todo)

    def _next(self) -> bool:
        while self.path:
            entry = self.path[-1]
            if len(entry) == 4 and entry[3]:
                entry[2] = entry[3].pop()
                return True
            if entry[1] + 1 < len(entry[0]):
                self.path[-1] = [entry[0], entry[1] + 1, ()]
                return True
            self.path.pop()
        return False

    def explore(self, factory, limits: Limits, collector: Collector | None = None) -> Result:
        col = collector or Collector(self.name, limits)
        complete = False
        try:
            while True:
                ex = run_execution(factory, self, limits)
                if not col.add(ex):
                    break
                if not self._next():
                    complete = True
                    break
        except KeyboardInterrupt:
            col.result.interrupted = True
        return col.finish(complete)
