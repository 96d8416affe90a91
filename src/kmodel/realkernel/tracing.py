"""A private tracefs instance with stacktrace triggers, and the parsing of its trace.

``Instance`` creates ``instances/kmodel-<pid>``, enables the chosen events with a
``stacktrace`` trigger on each, and on leaving (normally, on an exception or on Ctrl-C)
disables them, removes the triggers and the instance: nothing outside it is touched.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path

# The tracepoints that cover the modelled paths, if this kernel has them.
EVENTS = (
    "kvm:kvm_unmap_hva_range", "kvm:kvm_page_fault",
    "kvmmmu:kvm_mmu_spte_requested", "kvmmmu:kvm_tdp_mmu_spte_changed",
    "kvmmmu:kvm_mmu_prepare_zap_page", "kvmmmu:kvm_mmu_zap_all_fast",
    "oom:mark_victim", "oom:wake_reaper", "oom:start_task_reaping",
    "oom:finish_task_reaping", "oom:skip_task_reaping",
)


@dataclass
class Event:
    task: str              # comm, as the trace shows it
    pid: int
    name: str              # e.g. kvm_unmap_hva_range
    text: str              # the event's fields
    stack: list = field(default_factory=list)    # innermost first, tracing frames dropped


class Instance:
    def __init__(self, root: Path, events=EVENTS):
        self.root = Path(root)
        self.path = self.root / "instances" / f"kmodel-{os.getpid()}"
        self.wanted = list(events)
        self.enabled: list[str] = []
        self.missing: list[str] = []

    def __enter__(self):
        self.path.mkdir()
        self._old = signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            for ev in self.wanted:
                d = self.path / "events" / ev.replace(":", "/")
                if not d.is_dir():
                    self.missing.append(ev)
                    continue
                (d / "trigger").write_text("stacktrace\n")
                self.enabled.append(ev)
                (d / "enable").write_text("1\n")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def marker(self) -> Path:
        return self.path / "trace_marker"

    def read(self) -> str:
        return (self.path / "trace").read_text(errors="replace")

    def __exit__(self, *exc):
        for ev in reversed(self.enabled):
            d = self.path / "events" / ev.replace(":", "/")
            for f, text in (("enable", "0\n"), ("trigger", "!stacktrace\n")):
                try:
                    (d / f).write_text(text)
                except OSError:
                    pass
        self.enabled = []
        try:
            self.path.rmdir()
        except OSError:
            pass
        signal.signal(signal.SIGTERM, getattr(self, "_old", signal.SIG_DFL))
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


_LINE = re.compile(r"^\s*(?P<task>.+?)-(?P<pid>\d+)\s+\[\d+\]\s+\S+\s+[\d.]+:\s+"
                   r"(?P<name>[\w<> ]+?):\s?(?P<text>.*)$")
_PID = re.compile(r"^\s*.+?-(\d+)\s+\[\d+\]")
_TRACE_FRAMES = re.compile(r"^(trace_event_raw_event_|perf_trace_|trace_|__traceiter_|"
                           r"__bpf_trace_)")


def parse(text: str, start_marker: str | None = None, end_marker: str | None = None):
    """The events of a trace, each with its stack; only those between the markers (written
    to trace_marker by the reproducer) when they are given."""
    events: list[Event] = []
    last: Event | None = None
    by_pid: dict[int, Event] = {}       # the stack line follows its event on its CPU,
    inside = start_marker is None
    # a task that marks "start X" / "done X" counts only between its two marks (its
    # set-up before and its thread's teardown after are not the activity)
    marked: set = set()
    active: set = set()
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line.startswith(" =>"):
            if last is not None:
                fn = line[3:].strip().split()[0]
                if not _TRACE_FRAMES.match(fn):
                    last.stack.append(fn)
            continue
        if line.rstrip().endswith("<stack trace>"):
            # another CPU's event may sit between an event and its stack: pair by pid
            m = _PID.match(line)
            ev = by_pid.get(int(m.group(1))) if m else None
            last = ev if ev is not None and not ev.stack else None
            continue
        m = _LINE.match(line)
        if not m:
            continue
        name = m.group("name").strip()
        if name == "tracing_mark_write":
            pid = int(m.group("pid"))
            if ": start " in m.group("text"):
                marked.add(pid)
                active.add(pid)
            elif ": done " in m.group("text"):
                active.discard(pid)
            if start_marker and start_marker in m.group("text"):
                inside = True
            if end_marker and end_marker in m.group("text"):
                inside = False
            last = None
            continue
        pid = int(m.group("pid"))
        if not inside or (pid in marked and pid not in active):
            last = None
            continue
        ev = Event(m.group("task").strip(), int(m.group("pid")), name, m.group("text"))
        by_pid[ev.pid] = ev
        events.append(ev)
        last = None
    return events
