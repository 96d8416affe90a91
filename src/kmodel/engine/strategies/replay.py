"""Replay: follow a recorded schedule step by step."""

from __future__ import annotations

from ..execution import Execution, ModelError, Task
from ..explore import Limits, Strategy, run_execution
from ..schedule import ScheduleError, decode


class Replay(Strategy):
    name = "replay"

    def __init__(self, schedule: list[str]):
        self.steps = [decode(s) for s in schedule]
        self._ran = False

    def next_execution(self) -> bool:
        if self._ran:
            return False
        self._ran = True
        return True

    def pick(self, ex: Execution, enabled: list[Task]):
        i = ex.nsteps
        if i >= len(self.steps):
            raise ScheduleError(f"the schedule ends after {len(self.steps)} steps but the "
                                f"program can still run ({', '.join(t.name for t in enabled)})")
        name, choices = self.steps[i]
        task = ex.by_name.get(name)
        if task is None:
            raise ScheduleError(f"step {i}: no task named {name!r} "
                                f"(tasks: {', '.join(t.name for t in ex.tasks)})")
        if task not in enabled:
            raise ScheduleError(f"step {i}: task {name!r} cannot run at this point")
        return task, choices

    def run(self, factory, limits: Limits) -> Execution:
        ex = run_execution(factory, self, limits)
        if ex.nsteps < len(self.steps) and ex.outcome != "budget":
            raise ScheduleError(f"the program ended after {ex.nsteps} steps; "
                                f"the schedule has {len(self.steps)}")
        return ex


__all__ = ["Replay", "ModelError"]
