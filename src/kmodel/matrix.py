"""The matrix: every design x preset x arch over the built-in scenarios, and the build.

``run_matrix`` returns one ``MatrixRow`` per design/preset/arch (its fields say what each
holds); ``run_build_matrix`` one ``BuildRow`` per design/preset with MMU_NOTIFIER=n: the
scenarios need KVM, which selects MMU_NOTIFIER, so only the build is checked (verdict
"build-error" or "builds").
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import api
from .build import prepare
from .errors import BadInput, unknown, where
from .linux.config import PRESETS
from .patches import ORDER
from .progress import Progress
from .scenarios import SCENARIOS
from .spec import ARCHES, CheckSpec
from .workers import run_checks
from .workers.entry import in_local_worker, stop_requested


@dataclass
class FirstReport:
    """The first report of a row: what, where, in which scenario."""
    kind: str
    function: str
    scenario: str
    title: str


@dataclass
class MatrixRow:
    """One design/preset/arch of the matrix, over its scenarios."""
    design: str
    preset: str
    arch: str
    # "reports" if any scenario reported; "error" if a check crashed; "clean" only if
    # every scenario ran to completion; else "clean-so-far" (a --time cap or a limit
    # stopped a search)
    verdict: str = "clean-so-far"
    first_report: FirstReport | None = None
    executions: int = 0                  # totals over the row's scenarios
    elapsed_s: float = 0.0
    complete: bool = True                # every scenario's exploration was complete
    # scenario -> its verdict ("reports", "clean", "clean-so-far", "error")
    scenarios: dict[str, str] = field(default_factory=dict)
    # scenario -> the one-line error of a check that crashed
    errors: dict[str, str] = field(default_factory=dict)
    checks: list = field(default_factory=list)   # the CheckResults (to_dict() for JSON)
    interrupted: bool = False            # Ctrl-C stopped this row


@dataclass
class BuildRow:
    """One design/preset built with MMU_NOTIFIER=n."""
    design: str
    preset: str
    config: dict
    verdict: str                         # "builds" or "build-error"
    errors: list[str]                    # the compiler's errors
    check: object = None                 # the CheckResult, None for a design that builds


def _verdict_of(verdicts: list[str], any_reports: bool) -> str:
    if any_reports:
        return "reports"
    if "error" in verdicts:
        return "error"
    if verdicts and all(v == "clean" for v in verdicts):
        return "clean"
    return "clean-so-far"


def cell_specs(designs=None, presets=None, arches=None, scenarios=None,
               time_per_cell: float | None = None, all_reports: bool = False,
               strategy: str = "default", config: dict | None = None):
    """The checks of the matrix, row by row: [((design, preset, arch), [CheckSpec])]."""
    designs = list(designs or ORDER)
    presets = list(presets or PRESETS)
    arches = list(arches or ARCHES)
    scenarios = list(scenarios or SCENARIOS)
    out = []
    for d in designs:
        for p in presets:
            for a in arches:
                specs = [CheckSpec(patches=[d], preset=p, arch=a, scenario=s,
                                   strategy=strategy, config=dict(config or {}),
                                   time_limit=time_per_cell,
                                   stop_on_first=not all_reports)
                         for s in scenarios]
                out.append(((d, p, a), specs))
    return out


def run_matrix(designs=None, presets=None, arches=None, scenarios=None,
               time_per_cell: float | None = None, all_reports: bool = False,
               strategy: str = "default", config: dict | None = None,
               on_cell: Callable | None = None, progress: Callable | None = None,
               jobs: int | None = 1, ray: str | None = None,
               cache: bool = False) -> list[MatrixRow]:
    """Run the matrix: one ``MatrixRow`` per design/preset/arch.

    Each check stops at its first report unless ``all_reports`` (a design with no report
    is explored exhaustively either way); ``time_per_cell`` caps each check, and a check
    that hit the cap is not complete.  ``on_cell(i, total, spec, outcome)`` is called
    before each check (outcome None) and after it (a CheckResult, or the exception it
    raised); ``progress`` is passed to ``api.run_check``.  Bad input (an unknown design,
    preset, arch or scenario) raises ``api.BadInput`` before anything runs.

    ``jobs`` > 1 (None: every core) runs that many checks at once in worker processes,
    ``ray`` ("auto" or an address) as Ray tasks on a cluster; the rows are the same as
    with ``jobs=1`` except for the times (``on_cell`` is then called as checks start and
    finish, in any order, and ``progress`` with the totals of the finished checks).

    ``cache``: a check whose inputs have not changed answers from the results cache
    (``kmodel.cache``; its CheckResult has ``cached`` set), and each result is kept
    there: after editing one design, only its checks run again."""
    # bad input: fail before running anything (presets and arches first, as named)
    for p in presets or ():
        if p not in PRESETS:
            raise unknown("preset", p, PRESETS)
    for a in arches or ():
        if a not in ARCHES:
            raise unknown("arch", a, ARCHES, "arches")
    plan = cell_specs(designs, presets, arches, scenarios, time_per_cell, all_reports,
                      strategy, config)
    for _key, specs in plan:
        for spec in specs:
            prepare(spec)
    flat = [spec for _k, specs in plan for spec in specs]
    total = len(flat)
    outcomes = None
    if ray is not None or (jobs or os.cpu_count() or 1) > 1:
        outcomes = _run_parallel(flat, jobs, ray, on_cell, progress, cache)
    rows = []
    i = 0
    for (d, p, a), specs in plan:
        row = MatrixRow(d, p, a)
        rows.append(row)
        any_reports = False
        for spec in specs:
            if outcomes is None:
                out = _run_one(i, total, spec, on_cell, progress, cache)
            else:
                out = outcomes.get(i, ("interrupted",))
            if out[0] == "bad":
                raise out[1]
            if out[0] == "interrupted":
                row.interrupted = True
                row.complete = False
                break
            if out[0] == "error":                   # the model or a design crashed
                _, e, msg, elapsed = out
                row.scenarios[spec.scenario] = "error"
                row.errors[spec.scenario] = msg
                row.complete = False
                row.elapsed_s += elapsed
                if on_cell and outcomes is None:
                    on_cell(i, total, spec, e)
                i += 1
                continue
            cr = out[1]
            r = cr.result
            row.checks.append(cr)
            row.scenarios[spec.scenario] = cr.verdict
            row.executions += r.executions
            row.elapsed_s += r.elapsed_s
            row.complete = row.complete and r.complete
            if r.reports:
                any_reports = True
                if row.first_report is None:
                    first = r.reports[0]
                    row.first_report = FirstReport(first.kind, first.function,
                                                   spec.scenario, first.title)
            if on_cell and outcomes is None:
                on_cell(i, total, spec, cr)
            i += 1
            if r.interrupted:
                row.interrupted = True
                break
        row.verdict = _verdict_of(list(row.scenarios.values()), any_reports)
        if row.interrupted:
            break
    return rows


def _run_one(i: int, total: int, spec, on_cell, progress, cache: bool = False) -> tuple:
    """One check in this process: ("ok", CheckResult), ("error", exception, message,
    seconds) or ("interrupted",); bad input raises."""
    if on_cell:
        on_cell(i, total, spec, None)
    t0 = time.perf_counter()
    try:
        return ("ok", api.run_check(spec, progress=progress, cache=cache) if progress
                else api.run_check(spec, cache=cache))
    except KeyboardInterrupt:
        return ("interrupted",)
    except BadInput:
        raise
    except Exception as e:                  # the model or a design crashed
        return ("error", e, f"{type(e).__name__}: {e}{where(e)}", time.perf_counter() - t0)


def check_cell(item: tuple[CheckSpec, bool]) -> tuple:
    """One check of the matrix in a worker (``workers.run_checks``), ``item`` the spec
    and whether to use the results cache: ("ok", CheckResult), ("error", exception,
    one-line message, seconds) for a check that crashed, ("bad", BadInput, message) or
    ("interrupted",)."""
    spec, cache = item

    def progress(_state):
        if stop_requested():
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    try:
        return ("ok", api.run_check(spec, progress=progress if in_local_worker() else None,
                                    cache=cache))
    except KeyboardInterrupt:
        return ("interrupted",)
    except BadInput as e:
        return ("bad", e, str(e))
    except Exception as e:                      # the model or a design crashed
        msg = f"{type(e).__name__}: {e}{where(e)}"
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:
            e = RuntimeError(msg)
        return ("error", e, msg, time.perf_counter() - t0)


def _run_parallel(flat: list, jobs, ray, on_cell, progress, cache: bool) -> dict:
    """Every check of the matrix at once, over worker processes or Ray: {index: outcome}
    as ``_run_one`` gives them.  With ``cache``, the checks the cache answers are
    answered here and only the others go to the workers (which start none if none
    is left)."""
    total = len(flat)
    state = Progress()
    answered = {}
    if cache:
        for i, spec in enumerate(flat):
            hit = api.cached_result(spec)
            if hit is not None:
                answered[i] = ("ok", hit)

    def on_start(i):
        if on_cell:
            on_cell(i, total, flat[i], None)

    def on_done(i, out):
        if out[0] == "ok":
            state.executions += out[1].result.executions
            state.reports += len(out[1].result.reports)
            if progress:
                progress(state)
        if on_cell and out[0] in ("ok", "error"):
            on_cell(i, total, flat[i], out[1])

    for i, out in answered.items():
        on_start(i)
        on_done(i, out)
    todo = [i for i in range(total) if i not in answered]
    if not todo:
        return answered
    ran = run_checks(check_cell, [(flat[i], cache) for i in todo], jobs, ray,
                     lambda n: on_start(todo[n]), lambda n, out: on_done(todo[n], out))
    return {**answered, **{todo[n]: out for n, out in ran.items()}}


def run_build_matrix(designs=None, presets=("rt",), arch: str = "x86",
                     scenario: str = "oom-reap") -> list[BuildRow]:
    """Every design with MMU_NOTIFIER=n: run_check reports the build errors before it
    explores anything; a design that builds cannot run the KVM scenarios (BuildOnly).
    The build does not depend on the preset: one preset is enough."""
    rows = []
    for d in list(designs or ORDER):
        for p in list(presets or ("rt",)):
            spec = CheckSpec(patches=[d], preset=p, arch=arch, scenario=scenario,
                             config={"MMU_NOTIFIER": False})
            try:
                cr = api.run_check(spec)
            except api.BuildOnly:
                rows.append(BuildRow(d, p, {"MMU_NOTIFIER": False}, "builds", []))
                continue
            rows.append(BuildRow(d, p, {"MMU_NOTIFIER": False}, cr.verdict,
                                 list(cr.build_errors), cr))
    return rows


def checks(rows: list[MatrixRow], build_rows: list[BuildRow] | None = None) -> list:
    """Every CheckResult of the matrix, in order (for --json and --junit)."""
    out = [cr for row in rows for cr in row.checks]
    out += [b.check for b in build_rows or () if b.check is not None]
    return out


def summarize(rows: list[MatrixRow]) -> dict:
    v = [r.verdict for r in rows]
    return {k: v.count(k) for k in ("reports", "clean", "clean-so-far", "error")}
