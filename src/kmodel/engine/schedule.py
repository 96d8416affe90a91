"""A schedule is a list of steps, one string each: the task that ran, and, when the step
resolved nondeterministic choices, their values after a slash ("oom_reaper/1" or
"kworker/0:1/0.1").  It is all a replay needs."""

from __future__ import annotations


class ScheduleError(ValueError):
    """A schedule that does not fit the program it is replayed on."""


def encode(task: str, choices: tuple[int, ...]) -> str:
    if not choices:
        return task
    return task + "/" + ".".join(str(c) for c in choices) + "!"


def decode(entry: str) -> tuple[str, tuple[int, ...]]:
    # Task names may contain '/', so choices are marked by a trailing '!'.
    if not isinstance(entry, str) or not entry:
        raise ScheduleError(f"bad schedule step {entry!r}")
    if not entry.endswith("!"):
        return entry, ()
    head, sep, values = entry[:-1].rpartition("/")
    if not sep or not head:
        raise ScheduleError(f"bad schedule step {entry!r}")
    try:
        return head, tuple(int(v) for v in values.split("."))
    except ValueError:
        raise ScheduleError(f"bad choice values in schedule step {entry!r}") from None
