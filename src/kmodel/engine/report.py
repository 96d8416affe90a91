"""What an execution found.  The model writes the text; the engine only carries it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    kind: str
    title: str
    task: str
    function: str
    trace: list[str]
    text: str
    step: int = -1
    schedule: list[str] = field(default_factory=list)
    # when the exploration first found it: its execution number and the seconds since
    # the check started (``Limits.started``); not part of the report's identity
    found_execution: int | None = None
    found_s: float | None = None

    def key(self) -> tuple[str, str, str]:
        """Reports are deduplicated by kind, innermost function and title."""
        return (self.kind, self.function, self.title)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "title": self.title, "task": self.task,
            "function": self.function, "trace": list(self.trace), "text": self.text,
            "step": self.step, "schedule": list(self.schedule),
        }
