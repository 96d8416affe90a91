"""The exploration engine.  It knows tasks, ops, schedules and reports; nothing of Linux."""

from .execution import (Access, Execution, ModelError, Program, Task, TaskKilled,
                        current_execution, current_task)
from .explore import Collector, Limits, Result, run_execution
from .ops import (ACQ_R, ACQ_W, LOCAL, READ, REL_R, REL_W, TRY_R, TRY_W, UPDATE, WRITE, Choice,
                  Op, Wait)
from .report import KINDS, Report
from .schedule import ScheduleError, decode, encode

__all__ = [
    "Access", "Execution", "ModelError", "Program", "Task", "TaskKilled", "current_execution",
    "current_task", "Collector", "Limits", "Result", "run_execution", "ACQ_R", "ACQ_W",
    "LOCAL", "READ", "REL_R", "REL_W", "TRY_R", "TRY_W", "UPDATE", "WRITE", "Choice", "Op", "Wait",
    "KINDS", "Report", "ScheduleError", "decode", "encode",
]
