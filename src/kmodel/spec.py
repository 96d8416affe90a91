"""What a check is asked to do, and the shape of a replay record.

``CheckSpec`` is a check's whole input: designs, preset and config overrides, arch,
scenario and knobs, strategy and limits.  ``check_spec`` refuses one of the wrong types
with one line, whether it came from Python, the command line or a replay record.

A replay record (``replay_record``) is what ``kmodel replay`` re-runs: the model's input
and the schedule of one report, with the report it showed; ``check_record`` checks one
that was read from a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import ScheduleError
from .engine.schedule import decode
from .errors import BadInput, short, unknown

FORMAT_VERSION = 1
ARCHES = ("x86", "arm64")


@dataclass
class CheckSpec:
    patches: list[str] = field(default_factory=lambda: ["upstream"])
    preset: str = "rt"
    config: dict = field(default_factory=dict)      # symbol -> bool
    arch: str = "x86"
    scenario: str = "oom-reap"
    strategy: str = "default"
    knobs: dict = field(default_factory=dict)
    preemptions: int = 2
    runs: int = 200
    seed: int = 0
    max_steps: int = 5000
    max_executions: int | None = None
    time_limit: float | None = None
    stop_on_first: bool = False
    depth: int = 3                  # pct: bug depth
    shrink: bool = True             # shrink each distinct report's schedule


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v) -> bool:
    return isinstance(v, str)


def _is_names(v) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)


def _is_str_dict(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


# CheckSpec fields and what each must be: (test, what it must be).  ``check_spec`` checks
# them all, so a CheckSpec from Python, from the command line or from a replay record is
# refused with one line before anything runs.
SPEC_TYPES = {
    "patches": (_is_names, "a list of design names or patch files"),
    "preset": (_is_str, "a preset name"),
    "config": (_is_str_dict, "a mapping of config symbols to true/false"),
    "arch": (_is_str, "an arch name"),
    "scenario": (_is_str, "a scenario name or activities joined by commas"),
    "strategy": (_is_str, "a strategy name"),
    "knobs": (_is_str_dict, "a mapping of knob names to values"),
    "preemptions": (lambda v: _is_int(v) and v >= 0, "a whole number >= 0"),
    "runs": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "seed": (_is_int, "a whole number"),
    "max_steps": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "max_executions": (lambda v: v is None or _is_int(v) and v >= 1,
                       "a whole number >= 1 or None"),
    "time_limit": (lambda v: v is None or (_is_int(v) or isinstance(v, float)) and v > 0,
                   "a number of seconds > 0 or None"),
    "stop_on_first": (lambda v: isinstance(v, bool), "true or false"),
    "depth": (lambda v: _is_int(v) and v >= 1, "a whole number >= 1"),
    "shrink": (lambda v: isinstance(v, bool), "true or false"),
}


def check_spec(spec: CheckSpec, where: str = "") -> None:
    """BadInput (one line; ``where`` prefixes it) for a field of the wrong type."""
    for name, (ok, what) in SPEC_TYPES.items():
        value = getattr(spec, name)
        if not ok(value):
            raise BadInput(f"{where}{name} must be {what}, not {short(value)}")


# -- replay records -----------------------------------------------------------------

def replay_record(spec: CheckSpec, report) -> dict:
    """The replay record of one report of a check."""
    return {
        "format": FORMAT_VERSION,
        "patches": list(spec.patches),
        "preset": spec.preset,
        "config": dict(spec.config),
        "arch": spec.arch,
        "scenario": spec.scenario,
        "knobs": dict(spec.knobs),
        "max_steps": spec.max_steps,
        "schedule": list(report.schedule),
        # what the schedule showed when it was saved: replay checks it still does
        "report": {"kind": report.kind, "function": report.function,
                   "title": report.title},
    }


def _is_schedule(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_report(v) -> bool:
    return v is None or (isinstance(v, dict) and set(v) == {"kind", "function", "title"}
                         and all(isinstance(x, str) for x in v.values()))


# The fields of a replay record besides "format" (``replay_record``): (test, what it must
# be).  Those in RECORD_REQUIRED must be there; the others default as below.
RECORD_TYPES = {
    **{k: SPEC_TYPES[k] for k in ("patches", "preset", "arch", "scenario", "config",
                                  "knobs", "max_steps")},
    "schedule": (_is_schedule, "a list of steps (task names)"),
    "report": (_is_report, "an object with the kind, function and title of a report"),
}
RECORD_REQUIRED = ("patches", "preset", "arch", "scenario", "schedule")
RECORD_DEFAULTS = {"config": {}, "knobs": {}, "max_steps": 5000, "report": None}


def check_record(record) -> dict:
    """The fields of a replay record, checked (and defaults filled in): BadInput, one
    line, for anything that is not a format-1 record of the right shape."""
    fmt = record.get("format") if isinstance(record, dict) else None
    if not _is_int(fmt) or fmt != FORMAT_VERSION:
        raise BadInput(f"not a kmodel replay record (format {FORMAT_VERSION} expected)")
    where = "replay record: "
    for k in record:
        if k != "format" and k not in RECORD_TYPES:
            raise BadInput(where + str(unknown("field", k, ["format", *RECORD_TYPES])))
    for k in RECORD_REQUIRED:
        if k not in record:
            raise BadInput(f"{where}missing field {k!r}")
    fields = {**RECORD_DEFAULTS, **record}
    for name, (ok, what) in RECORD_TYPES.items():
        if not ok(fields[name]):
            raise BadInput(f"{where}{name} must be {what}, not {short(fields[name])}")
    for i, entry in enumerate(fields["schedule"]):
        try:
            decode(entry)
        except ScheduleError as e:
            raise BadInput(f"{where}schedule step {i}: {e}") from None
    if len(fields["schedule"]) > fields["max_steps"]:
        raise BadInput(f"{where}the schedule has {len(fields['schedule'])} steps, more "
                       f"than max_steps ({fields['max_steps']}) lets an execution take")
    return fields


def spec_of_record(fields: dict) -> CheckSpec:
    """The check a (checked) replay record re-runs."""
    return CheckSpec(patches=list(fields["patches"]), preset=fields["preset"],
                     config=dict(fields["config"]), arch=fields["arch"],
                     scenario=fields["scenario"], knobs=dict(fields["knobs"]),
                     max_steps=fields["max_steps"], strategy="dpor")


__all__ = ["CheckSpec", "FORMAT_VERSION", "ARCHES", "SPEC_TYPES", "check_spec",
           "replay_record", "check_record", "spec_of_record"]
