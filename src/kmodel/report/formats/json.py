"""JSON (``--json FILE``): one object per check, ``CheckResult.to_dict()``.  README.md
documents the schema.

``kmodel check --json FILE`` writes one object; ``kmodel matrix --json FILE`` writes a list
of them.  Each report carries its ``replay`` record: saved on its own as a file, it is what
``kmodel replay FILE`` reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import Format, register

# Top-level keys of a check object, and of each report in it (the test suite keeps
# README.md and this list in step with CheckResult.to_dict()).
CHECK_KEYS = ("format", "patches", "preset", "config", "arch", "scenario", "knobs",
              "strategy", "verdict", "executions", "classes", "sleep_blocked", "complete",
              "interrupted", "elapsed_s", "first_report_execution", "metrics",
              "build_errors", "reports")
REPORT_KEYS = ("kind", "title", "task", "function", "trace", "text", "step", "schedule",
               "replay")
REPLAY_KEYS = ("format", "patches", "preset", "config", "arch", "scenario", "knobs",
               "max_steps", "schedule", "report")


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def check_object(cr) -> dict:
    return cr.to_dict()


def write_check(path: str | Path, cr) -> None:
    Path(path).write_text(dumps(check_object(cr)))


def write_checks(path: str | Path, results) -> None:
    Path(path).write_text(dumps([check_object(cr) for cr in results]))


def write_replay(path: str | Path, record: dict) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(dumps(record))


register(Format(
    "json",
    {"check": "Write the result as JSON (schema in README.md).",
     "matrix": "Write the list of checks as JSON."},
    write_check=lambda path, cr, shown: write_check(path, cr),
    write_matrix=lambda path, out: write_checks(path, out.checks)))
