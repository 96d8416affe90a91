"""The exploration engine.  It knows tasks, ops, schedules and reports; nothing of Linux."""

from .execution import (Access, Execution, ModelError, Program, Task, TaskKilled,
                        current_execution, current_task)
from .explore import Collector, Limits, Result, Strategy, explore, run_execution
from .ops import (ACQ_R, ACQ_W, DEC, LOCAL, READ, REL_R, REL_W, TRY_R, TRY_W, UPDATE, WRITE,
                  Choice, DecAndTest, Op, Wait)
from .report import Report
from .schedule import ScheduleError, decode, encode

__all__ = [
    "Access", "Execution", "ModelError", "Program", "Task", "TaskKilled", "current_execution",
    "current_task", "Collector", "Limits", "Result", "Strategy", "explore", "run_execution",
    "ACQ_R", "ACQ_W", "LOCAL", "READ", "REL_R", "REL_W", "TRY_R", "TRY_W", "UPDATE", "WRITE",
    "DEC", "Choice", "DecAndTest", "Op", "Wait", "Report", "ScheduleError", "decode", "encode",
]
