"""One check, and the matrix: what the command line runs, usable from Python too.

A check builds a kernel (a preset plus config overrides, an arch, patches applied in
order), instantiates a scenario on it and explores its executions with a strategy.  The
result carries everything a report needs, including the replay record of each report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from . import scenarios
from .engine import Limits, ModelError, Result
from .engine.strategies import Dpor, Naive, Pct, RandomWalk, Replay
from .linux.config import PRESETS, SYMBOLS, Config
from .patching import PatchError, applied, build_errors, load

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


def build_config(preset: str, overrides: dict) -> Config:
    if preset not in PRESETS:
        raise BadInput(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    cfg = PRESETS[preset]
    for sym, val in overrides.items():
        if sym not in SYMBOLS:
            import difflib
            close = difflib.get_close_matches(sym, list(SYMBOLS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise BadInput(f"unknown config symbol {sym!r}{hint}; symbols: "
                           f"{', '.join(SYMBOLS)}")
        cfg = cfg.set(sym, val)
    return cfg


def _prepare(spec: CheckSpec):
    if spec.arch not in ARCHES:
        raise BadInput(f"unknown arch {spec.arch!r}; arches: {', '.join(ARCHES)}")
    if spec.strategy not in STRATEGIES:
        raise BadInput(f"unknown strategy {spec.strategy!r}; strategies: "
                       f"{', '.join(STRATEGIES)}")
    config = build_config(spec.preset, spec.config)
    try:
        sdef = scenarios.resolve(spec.scenario)
        scenarios.check_knobs(spec.knobs)
    except KeyError as e:
        raise BadInput(e.args[0]) from None
    try:
        patches = [load(p) for p in list(sdef.aids) + list(spec.patches)]
    except PatchError as e:
        raise BadInput(str(e)) from None
    return config, sdef, patches


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
    parallel = ray is not None or jobs is None or jobs > 1
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
    except PatchError as e:
        raise BadInput(str(e)) from None
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
        return Pct(spec.runs, spec.depth, spec.seed).explore(fac, _limits(spec)), \
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


def replay(record: dict) -> CheckResult:
    """Re-run one recorded schedule: the same model and schedule give the same report."""
    if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
        raise BadInput(f"not a kmodel replay record (format {FORMAT_VERSION} expected)")
    try:
        spec = CheckSpec(patches=list(record["patches"]), preset=record["preset"],
                         config=dict(record.get("config", {})), arch=record["arch"],
                         scenario=record["scenario"], knobs=dict(record.get("knobs", {})),
                         max_steps=int(record.get("max_steps", 5000)), strategy="dpor")
        schedule = list(record["schedule"])
    except (KeyError, TypeError, ValueError) as e:
        raise BadInput(f"replay record is missing or has a bad field: {e}") from None
    config, sdef, patches = _prepare(spec)
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    from .engine import ScheduleError
    try:
        with applied(patches):
            ex = Replay(schedule).run(fac, _limits(spec))
    except (ScheduleError, ModelError) as e:
        raise BadInput(f"the schedule does not fit this model: {e}") from None
    res = Result(strategy="replay", executions=1, complete=False)
    seen = set()
    for r in ex.reports:
        if r.key() not in seen:
            seen.add(r.key())
            res.reports.append(r)
    res.metrics = {k: [v, v] for k, v in ex.metrics.items()}
    return CheckResult(spec, config, res, "replay", trace=list(ex.trace), outcome=ex.outcome)


__all__ = ["CheckSpec", "CheckResult", "BadInput", "BuildOnly", "Progress", "run_check",
           "replay", "build_config", "STRATEGIES", "ARCHES", "asdict"]
