"""What an execution found.  The model writes the text; the engine only carries it."""

from __future__ import annotations

from dataclasses import dataclass, field

# Stable machine-readable kinds.  The engine itself raises only deadlock and livelock
# (when the program does not classify them); the rest come from the model's detectors.
KINDS = (
    "sleep-in-atomic", "scheduling-while-atomic", "lockdep-recursive", "lockdep-circular",
    "hung-task", "soft-lockup", "deadlock", "livelock", "warn", "bug", "use-after-free",
    "data-race", "build-error", "invariant", "model-error",
)


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

    def key(self) -> tuple[str, str, str]:
        """Reports are deduplicated by kind, innermost function and title."""
        return (self.kind, self.function, self.title)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind, "title": self.title, "task": self.task,
            "function": self.function, "trace": list(self.trace), "text": self.text,
            "step": self.step, "schedule": list(self.schedule),
        }
