"""Running a check, and replaying one report: what the command line runs, usable from
Python too.

A check builds a kernel (a preset plus config overrides, an arch, patches applied in
order), instantiates a scenario on it and explores its executions with a strategy
(``build.prepare``, ``strategies.explore``).  The result carries everything a report
needs, including the replay record of each report.  The matrix of checks is
``kmodel.matrix``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from . import cache as _cache
from . import spec as _spec
from .build import build_config, prepare, reraise_patch_error
from .engine import ModelError, Report, Result, ScheduleError
from .engine.schedule import decode
from .engine.shrink import shrink
from .engine.strategies import Replay
from .errors import BadInput, BuildOnly, one_line, unknown
from .linux.config import Config
from .patching import applied, build_errors
from .progress import Progress, watched
from .report.locks import lock_step
from .spec import ARCHES, FORMAT_VERSION, CheckSpec, check_record, spec_of_record
from .strategies import STRATEGIES, explore, limits
from .workers import Engines


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
    # Set when run_check(cache=True) answered from the results cache (kmodel.cache).
    cached: bool = False

    @property
    def verdict(self) -> str:
        if self.build_errors:
            return "build-error"
        return self.result.verdict()

    def replay_record(self, report) -> dict:
        return _spec.replay_record(self.spec, report)

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


def run_check(spec: CheckSpec, progress=None, *, jobs: int | None = 1,
              ray: str | None = None, cache: bool = False) -> CheckResult:
    """Run one check.  ``progress``, if given, is called with a ``Progress`` (the same
    object each time) after every execution; it runs on the exploring thread, so it
    should only record the numbers.

    ``jobs`` > 1 partitions the search over that many worker processes (None: every
    core), ``ray`` ("auto" or a cluster address) over a Ray cluster; see
    ``kmodel.workers`` for what stays identical to the sequential run.

    ``cache``: answer from the results cache when nothing the result depends on has
    changed (the result then has ``cached`` set), and keep the result there
    (``kmodel.cache`` says what is kept and what invalidates an entry)."""
    model = prepare(spec)
    config = model.config
    errors = build_errors(model.patches, config)
    if errors:
        res = Result(strategy="build", complete=True)
        res.reports = [Report("build-error", f"build error: {e.split(': error: ')[1][:90]}",
                              "make", e.split(":")[0], [], e) for e in errors]
        return CheckResult(spec, config, res, "build", errors)
    if not config.MMU_NOTIFIER:
        raise BuildOnly("the scenarios run a KVM guest, and CONFIG_KVM selects "
                        "MMU_NOTIFIER: with MMU_NOTIFIER=n only the build is checked, and "
                        "it built")
    factory = model.factory
    parallel = _partitioned(jobs, ray)
    key = None
    if cache:
        key = _cache.key(spec, [*model.scenario.aids, *spec.patches], parallel)
        hit = _cache.load(key)
        if isinstance(hit, CheckResult):
            hit.cached = True
            return hit
    if progress is not None and not parallel:
        factory = watched(factory, progress)
    t0 = time.perf_counter()
    try:
        with applied(model.patches):
            if parallel:
                with Engines(spec, jobs, ray, progress) as engines:
                    result, used = explore(spec, factory, engines)
            else:
                result, used = explore(spec, factory)
            if spec.shrink and result.reports:
                _shrink_reports(spec, factory, result)
    except Exception as e:
        reraise_patch_error(e, spec.patches)
        raise
    # a composite strategy (bounded, then dpor) times each phase: report the whole
    result.elapsed_s = max(result.elapsed_s, time.perf_counter() - t0)
    cr = CheckResult(spec, config, result, used)
    if key is not None and _cache.keepable(spec, result):
        _cache.store(key, cr)
    return cr


def _partitioned(jobs: int | None, ray: str | None) -> bool:
    return ray is not None or (jobs or os.cpu_count() or 1) > 1


def cached_result(spec: CheckSpec, *, jobs: int | None = 1,
                  ray: str | None = None) -> CheckResult | None:
    """The result ``run_check(spec, jobs=jobs, ray=ray, cache=True)`` would answer from
    the cache without running anything, or None (BadInput for a bad spec)."""
    model = prepare(spec)
    hit = _cache.load(_cache.key(spec, [*model.scenario.aids, *spec.patches],
                                 _partitioned(jobs, ray)))
    if not isinstance(hit, CheckResult):
        return None
    hit.cached = True
    return hit


SHRINK_SECONDS = 2.0          # per report
SHRINK_EXECUTIONS = 400       # per report


def _shrink_reports(spec: CheckSpec, factory, result: Result) -> None:
    """Replace each distinct report by the one its shrunk schedule shows: fewest
    preemptions, then fewest steps, then fewest tasks (``engine.shrink``)."""
    lim = limits(spec)
    out, seen, notes = [], set(), []
    for rep in result.reports:
        new = None
        if rep.schedule and rep.kind != "build-error":
            try:
                new = shrink(factory, rep.schedule, rep.kind, rep.function, lim,
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
    fields = check_record(record)
    spec = spec_of_record(fields)
    schedule = list(fields["schedule"])
    model = prepare(spec, "replay record: ")
    try:
        with applied(model.patches):
            ex = Replay(schedule).run(model.factory, limits(spec))
    except (ScheduleError, ModelError) as e:
        raise BadInput(f"the schedule does not fit this model: {one_line(e)}") from None
    except Exception as e:
        reraise_patch_error(e, spec.patches)
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
            raise BadInput(one_line(
                f"the replay does not show the recorded report ({expect['kind']} in "
                f"{expect['function']}: {expect['title']}); it {now}: the model, the "
                f"design or the configuration is not the one the record was saved with"))
    res.metrics = {k: [v, v] for k, v in ex.metrics.items()}
    # each step with what it did to a lock, for the timeline's lock holds
    trace = [(*step, lock_step(op)) for step, op in zip(ex.trace, ex.ev_op, strict=True)]
    return CheckResult(spec, config=model.config, result=res, strategy_used="replay",
                       trace=trace, outcome=ex.outcome)


__all__ = ["CheckSpec", "CheckResult", "BadInput", "BuildOnly", "Progress", "run_check",
           "cached_result", "replay", "build_config", "unknown", "STRATEGIES", "ARCHES"]
