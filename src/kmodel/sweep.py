"""The false-alarm sweep: every composition of k activities, on a design, under both
presets and both arches.

Upstream runs these workloads every day, so on upstream without PREEMPT_RT the model
must report nothing: a report there is a false alarm of the model (or a real upstream
bug, which would need evidence beyond the model).  With PREEMPT_RT the only reports
allowed are the documented real upstream findings in ``UPSTREAM_FINDINGS`` -- the
thread's splat, where the reaper runs.  Anything else is *unexpected*, and comes with
the command that replays it.  A design swept the same way (``kmodel matrix --sweep 2
--designs NAME``) has no allowed list: everything it reports is listed.

Each cell is first explored exhaustively (DPOR) within ``cap`` seconds.  A cell that
does not complete is re-explored bounded to ``bound`` preemptions (CHESS); if that
completes and is clean the cell is "clean-bounded" -- clean within the bound, which is
what it says, no more.  Outcomes:

    clean-complete   exhaustive, nothing reported
    clean-bounded    nothing reported; exhaustive only within ``bound`` preemptions
    reported         something reported (each report: expected or unexpected), and one
                     of the two searches finished
    incomplete       neither search finished within the cap (the sweep does not pass)
"""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field

from . import api
from .build import prepare
from .engine import Limits
from .engine.strategies import Dpor
from .patching import applied
from .workers import run_checks

SWEEP_ACTIVITIES = ("vcpu", "memslot", "madvise", "munmap", "reclaim", "oom", "mrelease",
                    "exit", "vm-close")
REAPERS = {"oom": "oom_reaper", "mrelease": "lmkd"}
PRESETS = ("nonrt", "rt")
ARCHES = ("x86", "arm64")


@dataclass(frozen=True)
class KnownFinding:
    """A real upstream report the sweep allows: its preset, kind, function, and the
    activity whose task reports it (so it is allowed only where that task runs)."""
    preset: str
    kind: str
    function: str
    activity: str
    why: str

    def matches(self, preset: str, activities, report) -> bool:
        return (preset == self.preset and self.activity in activities
                and report.kind == self.kind and report.function == self.function
                and report.task == REAPERS[self.activity])


UPSTREAM_FINDINGS = [
    KnownFinding("rt", "sleep-in-atomic", "kvm_mmu_notifier_invalidate_range_start", a,
                 "the thread's splat (linux-rt-devel/kvm@, 2026-02): the reaper's "
                 "non-blockable invalidation takes mn_invalidate_lock, a sleeping "
                 "spinlock_t on PREEMPT_RT")
    for a in ("oom", "mrelease")
]


def compositions(k: int, activities=SWEEP_ACTIVITIES) -> list[str]:
    """Every set of ``k`` distinct activities, as a scenario string, in a fixed order."""
    if k < 1 or k > len(activities):
        raise ValueError(f"a sweep composes 1 to {len(activities)} activities, not {k}")
    return [",".join(c) for c in itertools.combinations(activities, k)]


@dataclass
class SweepCell:
    scenario: str
    preset: str
    arch: str
    patches: tuple = ("upstream",)
    outcome: str = ""
    strategy: str = ""
    executions: int = 0
    classes: int = 0
    elapsed_s: float = 0.0
    expected: list = field(default_factory=list)     # (kind, task, function)
    unexpected: list = field(default_factory=list)   # (kind, task, function, title, replay)

    @property
    def ok(self) -> bool:
        return self.outcome != "incomplete" and not self.unexpected

    def line(self) -> str:
        reps = "; ".join(f"{k} in {f} ({t})" for k, t, f in self.expected)
        bad = "; ".join(f"UNEXPECTED {k} in {f} ({t}): {title} -- replay: {cmd}"
                        for k, t, f, title, cmd in self.unexpected)
        return (f"{self.scenario:28} {self.preset:5} {self.arch:5} {self.outcome:14} "
                f"{self.strategy:7} {self.executions:7} ex {self.elapsed_s:6.1f} s"
                + (f"  {reps}" if reps else "") + (f"  {bad}" if bad else ""))


def check_cell(scenario: str, preset: str, arch: str, patches=("upstream",),
               cap: float | None = 30.0, bound: int = 2, out: str | None = None,
               max_executions: int | None = None,
               bounded_executions: int | None = None,
               bounded_only: bool = False) -> SweepCell:
    """One cell: DPOR within ``cap`` s (and ``max_executions``); if that does not
    finish, DPOR bounded to ``bound`` preemptions within another ``cap`` s (and
    ``bounded_executions``), run to its end whatever it reports (a bounded search that
    stopped at a first report would not say the rest is clean).  Execution caps make a
    cell's outcome the same on any machine; time caps do not.  ``bounded_only`` skips
    the exhaustive search (CI's three-activity sweep).  Unexpected reports get their
    replay record written under ``out`` (default kmodel-out/sweep)."""
    t0 = time.perf_counter()
    cell = SweepCell(scenario, preset, arch, tuple(patches))
    spec = api.CheckSpec(patches=list(patches), preset=preset, arch=arch,
                         scenario=scenario, strategy="dpor", time_limit=cap, shrink=False,
                         max_executions=1 if bounded_only else max_executions)
    cr = api.run_check(spec, jobs=1)
    reports, done = list(cr.result.reports), cr.result.complete
    cell.strategy, cell.executions, cell.classes = "dpor", cr.result.executions, \
        cr.result.classes
    if not done:
        res = _bounded_to_the_end(spec, bound, cap, bounded_executions)
        cell.strategy = f"k<={bound}"
        cell.executions += res.executions
        cell.classes = res.classes
        seen = {r.key() for r in reports}
        reports += [r for r in res.reports if r.key() not in seen]
        # the bounded search stops early only on a cap: ending before both is the end
        done = not res.interrupted and (cap is None or res.elapsed_s < cap) and \
            (bounded_executions is None or res.executions < bounded_executions)
    activities = scenario.split(",")
    allowed = UPSTREAM_FINDINGS if tuple(patches) == ("upstream",) else []
    for rep in reports:
        if any(f.matches(preset, activities, rep) for f in allowed):
            cell.expected.append((rep.kind, rep.task, rep.function))
        else:
            cell.unexpected.append((rep.kind, rep.task, rep.function, rep.title,
                                    _save_replay(cr, rep, out)))
    if not done:
        cell.outcome = "incomplete"
    elif reports:
        cell.outcome = "reported"
    else:
        cell.outcome = "clean-complete" if cell.strategy == "dpor" else "clean-bounded"
    cell.elapsed_s = time.perf_counter() - t0
    return cell


def _bounded_to_the_end(spec, bound: int, cap: float | None, max_executions: int | None):
    """DPOR restricted to ``bound`` preemptions (CHESS), every report collected."""
    model = prepare(spec)
    with applied(model.patches):
        return Dpor(preemption_bound=bound).explore(
            model.factory, Limits(max_steps=spec.max_steps, time_limit=cap,
                                  max_executions=max_executions))


def _save_replay(cr, rep, out: str | None) -> str:
    out = out or os.path.join("kmodel-out", "sweep")
    os.makedirs(out, exist_ok=True)
    spec = cr.spec
    name = "-".join([*spec.patches, spec.preset, spec.arch,
                     spec.scenario.replace(",", "_"), rep.kind]).replace("/", "_")
    path = os.path.join(out, f"{name}.json")
    with open(path, "w") as fh:
        json.dump(cr.replay_record(rep), fh, indent=1)
    return f"kmodel replay {path}"


def _cell_job(args: tuple) -> tuple:
    """One cell in a worker (``workers.run_checks``): ("ok", SweepCell)."""
    key, kw = args
    try:
        return ("ok", check_cell(*key, **kw))
    except KeyboardInterrupt:
        return ("interrupted",)


def sweep(k: int, patches=("upstream",), presets=PRESETS, arches=ARCHES,
          scenarios=None, cap: float | None = 30.0, bound: int = 2, jobs: int | None = 1,
          ray: str | None = None, out: str | None = None, on_cell=None,
          max_executions: int | None = None, bounded_executions: int | None = None,
          bounded_only: bool = False) -> list[SweepCell]:
    """Every cell of the sweep, in a fixed order (scenario, preset, arch), run over
    ``jobs`` worker processes (None: every core; or a Ray cluster).  ``on_cell`` sees
    each cell as it ends; a cell that crashed raises here."""
    scenarios = scenarios if scenarios is not None else compositions(k)
    keys = [(s, p, a) for s in scenarios for p in presets for a in arches]
    kw = dict(patches=tuple(patches), cap=cap, bound=bound, out=out,
              max_executions=max_executions, bounded_executions=bounded_executions,
              bounded_only=bounded_only)
    cells: dict = {}
    if (jobs or 2) <= 1 and ray is None:
        for key in keys:
            cells[key] = check_cell(*key, **kw)
            if on_cell:
                on_cell(cells[key])
        return [cells[key] for key in keys]

    def done(i, outcome):
        if outcome[0] == "ok":
            cells[keys[i]] = outcome[1]
            if on_cell:
                on_cell(outcome[1])

    outcomes = run_checks(_cell_job, [(key, kw) for key in keys], jobs, ray,
                          on_done=done)
    for i, outcome in sorted(outcomes.items()):
        if outcome[0] == "interrupted":
            raise KeyboardInterrupt
        if outcome[0] != "ok":
            raise RuntimeError(f"sweep cell {' '.join(keys[i])}: {outcome[2]}")
    return [cells[key] for key in keys]


def table(cells: list[SweepCell]) -> str:
    """The summary: compositions x presets x arches, how many cells of each outcome."""
    lines = ["| preset | arch | clean-complete | clean-bounded | reported (expected) | "
             "reported (unexpected) | incomplete |", "|---|---|---|---|---|---|---|"]
    for p in dict.fromkeys(c.preset for c in cells):
        for a in dict.fromkeys(c.arch for c in cells):
            cs = [c for c in cells if c.preset == p and c.arch == a]
            n = {o: sum(1 for c in cs if c.outcome == o)
                 for o in ("clean-complete", "clean-bounded", "incomplete")}
            exp = sum(1 for c in cs if c.outcome == "reported" and not c.unexpected)
            unexp = sum(1 for c in cs if c.unexpected)
            lines.append(f"| {p} | {a} | {n['clean-complete']} | {n['clean-bounded']} | "
                         f"{exp} | {unexp} | {n['incomplete']} |")
    return "\n".join(lines)


__all__ = ["SWEEP_ACTIVITIES", "UPSTREAM_FINDINGS", "KnownFinding", "SweepCell",
           "compositions", "check_cell", "sweep", "table"]
