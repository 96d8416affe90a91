"""One check, and the matrix: what the command line runs, usable from Python too.

A check builds a kernel (a preset plus config overrides, an arch, patches applied in
order), instantiates a scenario on it and explores its executions with a strategy.  The
result carries everything a report needs, including the replay record of each report.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import asdict, dataclass, field

from . import scenarios
from .engine import Limits, ModelError, Result
from .engine.strategies import Dpor, Naive, Pct, RandomWalk, Replay
from .linux.config import PRESETS, SYMBOLS, Config
from .patching import PatchError, _hint, applied, build_errors, load

FORMAT_VERSION = 1
STRATEGIES = {
    "default": "bounded search (at most 2 preemptions) for a fast first report, then dpor "
               "to completion",
    "dpor": "exhaustive: one execution per class of equivalent interleavings",
    "bounded": "DPOR restricted to at most --preemptions K preemptions (CHESS)",
    "random": "seeded random walks (--runs N)",
    "pct": "probabilistic concurrency testing: seeded runs (--runs N) with random task "
           "priorities and depth-1 priority change points (depth 3 by default)",
    "naive": "every interleaving, no reduction (a yardstick for small scenarios)",
}
ARCHES = ("x86", "arm64")


class BadInput(Exception):
    """Input the user can fix: one line, exit status 2."""


class BuildOnly(BadInput):
    """The configuration builds but cannot run a scenario (MMU_NOTIFIER=n: KVM selects
    it): the build was the whole check, and it passed."""


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


@dataclass
class CheckResult:
    spec: CheckSpec
    config: Config
    result: Result
    strategy_used: str
    build_errors: list[str] = field(default_factory=list)
    # Set by replay(): the replayed execution's steps as (task, modelled function, op
    # label) and how it ended ("done", "deadlock", "budget", ...).
    trace: list | None = None
    outcome: str | None = None

    @property
    def verdict(self) -> str:
        if self.build_errors:
            return "build-error"
        return self.result.verdict()

    def replay_record(self, report) -> dict:
        return {
            "format": FORMAT_VERSION,
            "patches": list(self.spec.patches),
            "preset": self.spec.preset,
            "config": dict(self.spec.config),
            "arch": self.spec.arch,
            "scenario": self.spec.scenario,
            "knobs": dict(self.spec.knobs),
            "max_steps": self.spec.max_steps,
            "schedule": list(report.schedule),
            # what the schedule showed when it was saved: replay checks it still does
            "report": {"kind": report.kind, "function": report.function,
                       "title": report.title},
        }

    def to_dict(self) -> dict:
        r = self.result
        return {
            "format": FORMAT_VERSION,
            "patches": list(self.spec.patches),
            "preset": self.spec.preset,
            "config": self.config.to_dict(),
            "arch": self.spec.arch,
            "scenario": self.spec.scenario,
            "knobs": dict(self.spec.knobs),
            "strategy": self.strategy_used,
            "verdict": self.verdict,
            "executions": r.executions,
            "classes": r.classes,
            "sleep_blocked": r.sleep_blocked,
            "complete": r.complete,
            "interrupted": r.interrupted,
            "elapsed_s": round(r.elapsed_s, 3),
            "first_report_execution": r.first_report_execution,
            "metrics": {k: {"min": v[0], "max": v[1]} for k, v in r.metrics.items()},
            "build_errors": list(self.build_errors),
            "reports": [dict(rep.to_dict(), replay=self.replay_record(rep))
                        for rep in r.reports],
        }


def unknown(what: str, name, choices, plural: str | None = None) -> BadInput:
    """The one-line error for a name that is not one of ``choices``, with a "did you
    mean" hint when one is close (as for designs, scenarios and knobs): ``unknown arch
    'arm' (did you mean arm64?); arches: x86, arm64``."""
    choices = list(choices)
    hint = _hint(name, choices) if isinstance(name, str) else ""
    return BadInput(f"unknown {what} {_short(name)}{hint}; {plural or what + 's'}: "
                    f"{', '.join(choices)}")


def _short(value, limit: int = 60) -> str:
    """``repr(value)``, cut to one short line for an error message."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_str(v) -> bool:
    return isinstance(v, str)


def _is_names(v) -> bool:
    return isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)


def _is_str_dict(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) for k in v)


# CheckSpec fields and what each must be: (test, what it must be).  ``_prepare`` checks
# them all, so a CheckSpec from Python, from the command line or from a replay record is
# refused with one line before anything runs.
_SPEC_TYPES = {
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


def _check_spec(spec: CheckSpec, where: str = "") -> None:
    for name, (ok, what) in _SPEC_TYPES.items():
        value = getattr(spec, name)
        if not ok(value):
            raise BadInput(f"{where}{name} must be {what}, not {_short(value)}")


def build_config(preset: str, overrides: dict) -> Config:
    if not isinstance(preset, str) or preset not in PRESETS:
        raise unknown("preset", preset, PRESETS)
    cfg = PRESETS[preset]
    for sym, val in overrides.items():
        if sym not in SYMBOLS:
            raise unknown("config symbol", sym, SYMBOLS, "symbols")
        if not isinstance(val, bool):
            raise BadInput(f"config symbol {sym} takes true or false (y or n), not "
                           f"{_short(val)}")
        cfg = cfg.set(sym, val)
    return cfg


def _prepare(spec: CheckSpec, where: str = ""):
    """Check ``spec`` and build what a run needs: (config, scenario, patches).  Anything
    wrong is ``BadInput`` (one line; ``where`` prefixes a message about a field)."""
    _check_spec(spec, where)
    if spec.arch not in ARCHES:
        raise unknown("arch", spec.arch, ARCHES, "arches")
    if spec.strategy not in STRATEGIES:
        raise unknown("strategy", spec.strategy, STRATEGIES, "strategies")
    config = build_config(spec.preset, spec.config)
    try:
        sdef = scenarios.resolve(spec.scenario)
        scenarios.check_knobs(spec.knobs)
    except KeyError as e:
        raise BadInput(e.args[0]) from None
    patches = []
    for name in list(sdef.aids) + list(spec.patches):
        try:
            patches.append(load(name))
        except PatchError as e:
            raise BadInput(str(e)) from None
        except (OSError, ValueError) as e:      # a path the file system refuses
            raise BadInput(f"cannot read patch file {_short(name)}: {e}") from None
    return config, sdef, patches


def _user_patch_files(names) -> dict[str, str]:
    """The patch files among ``names`` (the rest are built-in): real path -> the name
    given."""
    from .patches import AIDS, ORDER
    return {os.path.realpath(n): n for n in names
            if isinstance(n, str) and n not in ORDER and n not in AIDS}


_TB_LINE = re.compile(r'^\s*File "(.+)", line (\d+), in (\S+)\s*$', re.MULTILINE)


def _reraise_patch_error(e: BaseException, names) -> None:
    """A patch that fails to apply, or a patch file that raises while the model runs it,
    is bad input, named by its file and line (the original exception is the cause:
    --debug shows it).  Returns for anything else: the model's own crash, which goes on
    as it is."""
    if isinstance(e, PatchError):
        raise BadInput(str(e)) from None
    bad = _raised_in_patch(e, names)
    if bad is not None:
        raise bad from e


def _raised_in_patch(e: BaseException, names) -> BadInput | None:
    """A user's patch file raised ``e`` while the model ran it: the one-line BadInput that
    names the file and the line (the innermost frame in one of the patch files), or None
    when no patch file is on the traceback (the model itself crashed).  An exception from
    a worker process carries the worker's traceback as text in its cause
    (concurrent.futures' _RemoteTraceback): that is read too."""
    files = _user_patch_files(names)
    if not files:
        return None
    hit = None
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        name = files.get(os.path.realpath(code.co_filename))
        if name is not None:
            hit = (name, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    if hit is None and e.__cause__ is not None:
        for m in _TB_LINE.finditer(str(e.__cause__)):
            name = files.get(os.path.realpath(m.group(1)))
            if name is not None:
                hit = (name, int(m.group(2)), m.group(3))
    if hit is None:
        return None
    msg = _one_line(e)
    return BadInput(f"{hit[0]}:{hit[1]}: patch raised {type(e).__name__}"
                    f"{': ' + msg if msg else ''} (in {hit[2]}, while the model ran it)")


def _limits(spec: CheckSpec, **over) -> Limits:
    lim = Limits(max_steps=spec.max_steps, max_executions=spec.max_executions,
                 time_limit=spec.time_limit, stop_on_first=spec.stop_on_first)
    for k, v in over.items():
        setattr(lim, k, v)
    return lim


@dataclass
class Progress:
    """What a running check has done so far; passed to ``run_check(progress=...)``."""
    executions: int = 0      # executions finished
    reports: int = 0         # distinct reports among them (kind, function, title)
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started


def _watched(fac, progress):
    """The scenario factory, counting executions: the engine calls it once per execution,
    and the program it made last time holds that execution (``program.ex``)."""
    state = Progress()
    keys: set = set()
    last = [None]

    def make():
        prev = last[0]
        if prev is not None:
            state.executions += 1
            ex = getattr(prev, "ex", None)
            for r in getattr(ex, "reports", ()):
                keys.add(r.key())
            state.reports = len(keys)
            progress(state)
        last[0] = program = fac()
        return program
    return make


def run_check(spec: CheckSpec, progress=None, *, jobs: int | None = 1,
              ray: str | None = None) -> CheckResult:
    """Run one check.  ``progress``, if given, is called with a ``Progress`` (the same
    object each time) after every execution; it runs on the exploring thread, so it
    should only record the numbers.

    ``jobs`` > 1 partitions the search over that many worker processes (None: every
    core), ``ray`` ("auto" or a cluster address) over a Ray cluster; see
    ``kmodel.parallel`` for what stays identical to the sequential run."""
    config, sdef, patches = _prepare(spec)
    errors = build_errors(patches, config)
    if errors:
        res = Result(strategy="build", complete=True)
        from .engine import Report
        res.reports = [Report("build-error", f"build error: {e.split(': error: ')[1][:90]}",
                              "make", e.split(":")[0], [], e) for e in errors]
        return CheckResult(spec, config, res, "build", errors)
    if not config.MMU_NOTIFIER:
        raise BuildOnly("the scenarios run a KVM guest, and CONFIG_KVM selects "
                        "MMU_NOTIFIER: with MMU_NOTIFIER=n only the build is checked, and "
                        "it built")
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    parallel = ray is not None or (jobs or os.cpu_count() or 1) > 1
    if progress is not None and not parallel:
        fac = _watched(fac, progress)
    t0 = time.perf_counter()
    try:
        with applied(patches):
            if parallel:
                from .parallel import Engines
                with Engines(spec, jobs, ray, progress) as eng:
                    result, used = _explore(spec, fac, eng)
            else:
                result, used = _explore(spec, fac)
            if spec.shrink and result.reports:
                _shrink_reports(spec, fac, result)
    except Exception as e:
        _reraise_patch_error(e, spec.patches)
        raise
    # a composite strategy (bounded, then dpor) times each phase: report the whole
    result.elapsed_s = max(result.elapsed_s, time.perf_counter() - t0)
    return CheckResult(spec, config, result, used)


class _Sequential:
    """The strategies _explore composes, run in this process (``kmodel.parallel.Engines``
    gives partitioned ones with the same methods)."""

    @staticmethod
    def dpor(preemption_bound: int | None = None):
        return Dpor(preemption_bound=preemption_bound)

    @staticmethod
    def random(runs: int, seed: int):
        return RandomWalk(runs, seed)

    @staticmethod
    def pct(runs: int, depth: int, seed: int):
        return Pct(runs, depth, seed)

    @staticmethod
    def naive():
        return Naive()


def _explore(spec: CheckSpec, fac, eng=_Sequential):
    s = spec.strategy
    if s == "dpor":
        return eng.dpor().explore(fac, _limits(spec)), "dpor"
    if s == "naive":
        return eng.naive().explore(fac, _limits(spec)), "naive"
    if s == "bounded":
        return _bounded(spec, fac, spec.preemptions, eng=eng), \
            f"bounded(k={spec.preemptions})"
    if s == "random":
        return eng.random(spec.runs, spec.seed).explore(fac, _limits(spec)), "random"
    if s == "pct":
        return eng.pct(spec.runs, spec.depth, spec.seed).explore(fac, _limits(spec)), \
            f"pct(d={spec.depth})"
    # default: iterative context bounding finds a report with the fewest preemptions;
    # without one, dpor decides (exhaustively, within the limits).
    t0 = time.perf_counter()
    res = _bounded(spec, fac, min(spec.preemptions, 2), stop_on_first=True, eng=eng)
    if res.interrupted:
        return res, res.strategy
    if res.reports:
        used = res.strategy
        if not spec.stop_on_first:
            full = eng.dpor().explore(fac, _limits(spec, time_limit=_remaining(spec, t0)))
            full.reports = res.reports + [r for r in full.reports
                                          if r.key() not in {x.key() for x in res.reports}]
            full.first_report_execution = res.first_report_execution
            full.first_report_s = res.first_report_s
            full.executions += res.executions
            return full, f"{used}+dpor"
        return res, used
    full = eng.dpor().explore(fac, _limits(spec, time_limit=_remaining(spec, t0)))
    full.executions += res.executions
    return full, "dpor"


SHRINK_SECONDS = 2.0          # per report
SHRINK_EXECUTIONS = 400       # per report


def _shrink_reports(spec: CheckSpec, fac, result: Result) -> None:
    """Replace each distinct report by the one its shrunk schedule shows: fewest
    preemptions, then fewest steps, then fewest tasks (``engine.shrink``)."""
    from .engine.shrink import shrink
    lim = _limits(spec)
    out, seen, notes = [], set(), []
    for rep in result.reports:
        new = None
        if rep.schedule and rep.kind != "build-error":
            try:
                new = shrink(fac, rep.schedule, rep.kind, rep.function, lim,
                             time_budget=SHRINK_SECONDS, max_executions=SHRINK_EXECUTIONS)
            except (ModelError, ValueError):
                new = None
        if new is not None and new.after < new.before:
            notes.append(f"{rep.kind} in {rep.function}: preemptions/steps/tasks "
                         f"{'/'.join(map(str, new.before))} -> "
                         f"{'/'.join(map(str, new.after))}")
            rep = new.report        # its text, trace and step match its schedule
        if rep.key() not in seen:
            seen.add(rep.key())
            out.append(rep)
    result.reports = out
    if notes:
        result.note = "; ".join(filter(None, [result.note, "shrunk: " + "; ".join(notes)]))


def _remaining(spec: CheckSpec, t0: float):
    if spec.time_limit is None:
        return None
    # the cap is for the whole check: a phase that starts past it runs one execution
    return max(0.001, spec.time_limit - (time.perf_counter() - t0))


def _bounded(spec: CheckSpec, fac, k: int, stop_on_first: bool | None = None,
             eng=_Sequential) -> Result:
    """Iterative context bounding: K = 0, 1, ... k; the first bound that reports wins.
    The time limit is for all the bounds together."""
    total = None
    t0 = time.perf_counter()
    for bound in range(k + 1):
        lim = _limits(spec, stop_on_first=spec.stop_on_first if stop_on_first is None
                      else stop_on_first, time_limit=_remaining(spec, t0))
        res = eng.dpor(preemption_bound=bound).explore(fac, lim)
        if total is not None:
            res.executions += total.executions
        total = res
        if res.reports or res.complete or res.interrupted:
            break
    return total


def _is_schedule(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_report(v) -> bool:
    return v is None or (isinstance(v, dict) and set(v) == {"kind", "function", "title"}
                         and all(isinstance(x, str) for x in v.values()))


# The fields of a replay record besides "format" (``CheckResult.replay_record``): (test,
# what it must be).  Those in _RECORD_REQUIRED must be there; the others default as below.
_RECORD_TYPES = {
    **{k: _SPEC_TYPES[k] for k in ("patches", "preset", "arch", "scenario", "config",
                                   "knobs", "max_steps")},
    "schedule": (_is_schedule, "a list of steps (task names)"),
    "report": (_is_report, "an object with the kind, function and title of a report"),
}
_RECORD_REQUIRED = ("patches", "preset", "arch", "scenario", "schedule")
_RECORD_DEFAULTS = {"config": {}, "knobs": {}, "max_steps": 5000, "report": None}


def _check_record(record) -> dict:
    """The fields of a replay record, checked (and defaults filled in): BadInput, one
    line, for anything that is not a format-1 record of the right shape."""
    fmt = record.get("format") if isinstance(record, dict) else None
    if not _is_int(fmt) or fmt != FORMAT_VERSION:
        raise BadInput(f"not a kmodel replay record (format {FORMAT_VERSION} expected)")
    where = "replay record: "
    for k in record:
        if k != "format" and k not in _RECORD_TYPES:
            raise BadInput(where + str(unknown("field", k, ["format", *_RECORD_TYPES])))
    for k in _RECORD_REQUIRED:
        if k not in record:
            raise BadInput(f"{where}missing field {k!r}")
    fields = {**_RECORD_DEFAULTS, **record}
    for name, (ok, what) in _RECORD_TYPES.items():
        if not ok(fields[name]):
            raise BadInput(f"{where}{name} must be {what}, not {_short(fields[name])}")
    from .engine import ScheduleError
    from .engine.schedule import decode
    for i, entry in enumerate(fields["schedule"]):
        try:
            decode(entry)
        except ScheduleError as e:
            raise BadInput(f"{where}schedule step {i}: {e}") from None
    if len(fields["schedule"]) > fields["max_steps"]:
        raise BadInput(f"{where}the schedule has {len(fields['schedule'])} steps, more "
                       f"than max_steps ({fields['max_steps']}) lets an execution take")
    return fields


def _one_line(text) -> str:
    return " ".join(str(text).split())


def replay(record: dict, *, check_report: bool = True) -> CheckResult:
    """Re-run one recorded schedule: the same model and schedule give the same report.

    Everything that does not hold is ``BadInput`` (one line): a record that is not a
    format-1 record, a field that is missing, unknown or of the wrong type, a value that
    makes no sense (``max_steps`` < 1, a config value that is not true/false, an unknown
    name); a schedule that does not fit the model step by step (a task that does not
    exist or cannot run, choice values the step does not resolve, steps left over or
    missing); and, when the record names the report it showed (``report``; records that
    ``replay_record`` writes always do) and ``check_report`` is true, a replay that does
    not show that report again -- it runs clean or shows something else, because the
    model, the design or the configuration is not the one the record was saved with."""
    fields = _check_record(record)
    where = "replay record: "
    spec = CheckSpec(patches=list(fields["patches"]), preset=fields["preset"],
                     config=dict(fields["config"]), arch=fields["arch"],
                     scenario=fields["scenario"], knobs=dict(fields["knobs"]),
                     max_steps=fields["max_steps"], strategy="dpor")
    schedule = list(fields["schedule"])
    config, sdef, patches = _prepare(spec, where)
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    from .engine import ScheduleError
    from .engine.schedule import decode
    try:
        with applied(patches):
            ex = Replay(schedule).run(fac, _limits(spec))
    except (ScheduleError, ModelError) as e:
        raise BadInput(f"the schedule does not fit this model: {_one_line(e)}") from None
    except Exception as e:
        _reraise_patch_error(e, spec.patches)
        raise
    # every step as recorded: the same task (Replay picked it) and the same choice values
    # (a step given values it does not resolve, or resolving values it was not given,
    # does not fit)
    for i, (want, got) in enumerate(zip(schedule, ex.schedule)):
        w, g = decode(want), decode(got)
        if w != g:
            did = f"choices {'.'.join(map(str, g[1]))}" if g[1] else "no choice"
            raise BadInput(f"the schedule does not fit this model: step {i} is {want!r}, "
                           f"but that step resolves {did}")
    if len(ex.schedule) != len(schedule):
        raise BadInput(f"the schedule does not fit this model: the execution ended "
                       f"({ex.outcome}) after {len(ex.schedule)} of its {len(schedule)} "
                       f"steps")
    res = Result(strategy="replay", executions=1, complete=False)
    seen = set()
    for r in ex.reports:
        if r.key() not in seen:
            seen.add(r.key())
            res.reports.append(r)
    expect = fields["report"]
    if check_report and expect is not None:
        key = (expect["kind"], expect["function"], expect["title"])
        if key not in seen:
            if res.reports:
                now = "shows " + "; ".join(f"{r.kind} in {r.function}"
                                           for r in res.reports[:3]) + \
                    ("; ..." if len(res.reports) > 3 else "") + " instead"
            else:
                now = f"runs clean (the execution ends: {ex.outcome})"
            raise BadInput(_one_line(
                f"the replay does not show the recorded report ({expect['kind']} in "
                f"{expect['function']}: {expect['title']}); it {now}: the model, the "
                f"design or the configuration is not the one the record was saved with"))
    res.metrics = {k: [v, v] for k, v in ex.metrics.items()}
    return CheckResult(spec, config, res, "replay", trace=list(ex.trace), outcome=ex.outcome)


__all__ = ["CheckSpec", "CheckResult", "BadInput", "BuildOnly", "Progress", "run_check",
           "replay", "build_config", "unknown", "STRATEGIES", "ARCHES", "asdict"]
