#!/usr/bin/env python
"""How far exhaustive exploration gets: one row per scenario and preset.

    python benchmarks/exploration.py                   # every row, cap 60 s per check
    python benchmarks/exploration.py --quick           # a few small rows
    python benchmarks/exploration.py --activities oom,exit,vcpu --preset nonrt
    python benchmarks/exploration.py --builtin-only --cap 20 --no-factors

Rows: every composition of three activities from ACTIVITIES that the scenarios accept
(a composition whose program cannot start, e.g. two activities that are the same
thread, is listed once at the end as not accepted), then the built-in scenarios; on
each preset given.  Columns:

  classes, executions, complete   what the search found within the cap (per check)
  s, exec/s                       its wall time and executions per second
  states visited/merged           for a strategy that stores states (its Result's
                                  ``states_visited`` and ``states_merged``); "-" for
                                  one that stores none
  reuse x                         time without prefix reuse / time with it, on the
                                  same executions (``--factor-cap`` executions at most)
  naive/dpor                      naive's executions over dpor's, where dpor completed
                                  (">N" where naive did not complete within the cap)
  jobs2 x                         time on one core / time with --jobs 2, where dpor
                                  completed

A factor is measured only where the search completed within ``--factor-limit`` s
(the other searches of that row run under the same cap); "-" elsewhere.  Everything in
one table comes from one run, so ratios compare like with like on a shared machine.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

from kmodel import api, scenarios
from kmodel.build import prepare
from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor, Naive
from kmodel.patching import applied

ACTIVITIES = ("vcpu", "memslot", "madvise", "munmap", "reclaim", "oom", "mrelease", "exit",
              "vm-close")
QUICK = [("memslot-vs-madvise", "nonrt"), ("oom-vs-madvise", "nonrt"),
         ("memslot,madvise,munmap", "nonrt")]
HEAD = ["scenario", "preset", "classes", "executions", "complete", "s", "exec/s",
        "states visited/merged", "reuse x", "naive/dpor", "jobs2 x"]


def _model(scenario: str, preset: str, patch: str):
    """(factory, patches to apply) for one check, or raise api.BadInput."""
    model = prepare(api.CheckSpec(patches=[patch], preset=preset, scenario=scenario))
    return model.factory, model.patches


def accepted(scenario: str, preset: str, patch: str) -> bool:
    """Whether the scenario's program starts and runs one execution."""
    try:
        fac, patches = _model(scenario, preset, patch)
        with applied(patches):
            Dpor().explore(fac, Limits(max_executions=1))
    except Exception:
        return False
    return True


def _check(scenario, preset, patch, strategy, cap, jobs=1):
    spec = api.CheckSpec(patches=[patch], preset=preset, scenario=scenario,
                         strategy=strategy, time_limit=cap, shrink=False)
    t0 = time.perf_counter()
    res = api.run_check(spec, jobs=jobs).result
    return res, time.perf_counter() - t0


def _reuse_factor(scenario, preset, patch, executions: int) -> str:
    """Time of the first ``executions`` dpor executions without prefix reuse over the
    time with it (the same executions: reuse changes only how they are run)."""
    fac, patches = _model(scenario, preset, patch)
    times = []
    with applied(patches):
        for reuse in (False, True):
            d = Dpor()
            d.reuse_prefix = reuse
            t0 = time.perf_counter()
            d.explore(fac, Limits(max_executions=executions))
            times.append(time.perf_counter() - t0)
    return f"{times[0] / max(times[1], 1e-9):.2f}"


def _naive_factor(scenario, preset, patch, dpor_executions: int, cap: float) -> str:
    fac, patches = _model(scenario, preset, patch)
    with applied(patches):
        res = Naive().explore(fac, Limits(time_limit=cap))
    ratio = res.executions / max(dpor_executions, 1)
    return f"{ratio:.1f}" if res.complete else f">{ratio:.1f}"


def _states(res) -> str:
    visited = getattr(res, "states_visited", None)
    merged = getattr(res, "states_merged", None)
    if visited is None:
        return "-"
    return f"{visited}/{merged if merged is not None else '-'}"


def row(scenario, preset, args) -> list:
    res, dt = _check(scenario, preset, args.patch, args.strategy, args.cap)
    out = [scenario, preset, res.classes, res.executions, "yes" if res.complete else "no",
           f"{dt:.2f}", f"{res.executions / max(dt, 1e-9):.0f}", _states(res)]
    small = res.complete and dt <= args.factor_limit and not args.no_factors
    if small:
        out.append(_reuse_factor(scenario, preset, args.patch,
                                 min(res.executions, args.factor_cap)))
        out.append(_naive_factor(scenario, preset, args.patch, res.executions,
                                 args.factor_limit))
        _, dt2 = _check(scenario, preset, args.patch, args.strategy, args.cap, jobs=2)
        out.append(f"{dt / max(dt2, 1e-9):.2f}")
    else:
        out += ["-", "-", "-"]
    return out


def print_table(head: list[str], rows: list[list], out=sys.stdout) -> None:
    cells = [[str(c) for c in r] for r in rows]
    width = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(width[i]) for i, h in enumerate(head)) + " |", file=out)
    print("|" + "|".join("-" * (w + 2) for w in width) + "|", file=out)
    for r in cells:
        print("| " + " | ".join(c.ljust(width[i]) for i, c in enumerate(r)) + " |",
              file=out)
    out.flush()


def compositions(only: list[str] | None) -> list[str]:
    pool = [a for a in ACTIVITIES if only is None or a in only]
    return [",".join(c) for c in itertools.combinations(pool, 3)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few small rows")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds per check (60)")
    ap.add_argument("--preset", action="append", choices=["rt", "nonrt"],
                    help="repeatable; default both")
    ap.add_argument("--patch", default="upstream", help="the design (upstream)")
    ap.add_argument("--strategy", default="dpor", help="the check's --strategy (dpor)")
    ap.add_argument("--activities", help="compose only these (comma-separated)")
    ap.add_argument("--scenario", action="append",
                    help="only this scenario (a name or activities); repeatable")
    ap.add_argument("--builtin-only", action="store_true", help="no compositions")
    ap.add_argument("--no-builtin", action="store_true", help="no built-in scenarios")
    ap.add_argument("--no-factors", action="store_true", help="skip the factor columns")
    ap.add_argument("--factor-limit", type=float, default=10.0,
                    help="measure factors where the check completed within this (10 s)")
    ap.add_argument("--factor-cap", type=int, default=2000,
                    help="executions the prefix-reuse factor runs at most (2000)")
    args = ap.parse_args(argv)
    presets = args.preset or ["rt", "nonrt"]
    if args.quick:
        todo = [(s, p) for s, p in QUICK if args.preset is None or p in presets]
    elif args.scenario:
        todo = [(s, p) for s in args.scenario for p in presets]
    else:
        only = args.activities.split(",") if args.activities else None
        names = [] if args.builtin_only else compositions(only)
        if not args.no_builtin and only is None:
            names += list(scenarios.SCENARIOS)
        todo = [(s, p) for s in names for p in presets]
    rows, refused = [], []
    t0 = time.perf_counter()
    for scenario, preset in todo:
        if not accepted(scenario, preset, args.patch):
            refused.append(f"{scenario} ({preset})")
            continue
        rows.append(row(scenario, preset, args))
    print(f"# exploration: {args.patch}, strategy {args.strategy}, cap {args.cap:g} s per "
          f"check, {time.perf_counter() - t0:.0f} s in all\n")
    print_table(HEAD, rows)
    if refused:
        print(f"\nnot accepted by the scenarios: {', '.join(refused)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
