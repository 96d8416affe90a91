#!/usr/bin/env python
"""How soon each report of the thread's designs is first found (issue 13's target:
under 1 s).

    python benchmarks/first_report.py                  # x86, rt and nonrt, cap 30 s
    python benchmarks/first_report.py --arch arm64 --preset rt --cap 10
    python benchmarks/first_report.py --design v1-raw-mn-lock --scenario oom-reap

Every check of the matrix (each built-in design on each built-in scenario) runs with
the default strategy (bounded search for a fast first report, then dpor) to the end or
the cap, every report kept, on one core (``jobs=1``: the times are for one core; two
cores find them no later).  One row per distinct report: the check, the report, the
seconds from the start of the check to the execution that first showed it, and that
execution's number.  The summary says how many were found in under 1 s and names the
slowest.  Times vary with the machine's load; the execution numbers do not.
"""

from __future__ import annotations

import argparse
import sys
import time

from kmodel import api
from kmodel.matrix import cell_specs

TARGET_S = 1.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--design", action="append", help="only these designs (repeatable)")
    ap.add_argument("--scenario", action="append", help="only these scenarios")
    ap.add_argument("--preset", action="append", choices=["rt", "nonrt"])
    ap.add_argument("--arch", default="x86", choices=["x86", "arm64"])
    ap.add_argument("--cap", type=float, default=30.0, help="seconds per check")
    args = ap.parse_args(argv)
    plan = cell_specs(args.design, args.preset, [args.arch], args.scenario,
                      time_per_cell=args.cap, all_reports=True)
    rows = []
    checks = 0
    t_all = time.perf_counter()
    for (design, preset, arch), specs in plan:
        for spec in specs:
            spec.shrink = False
            checks += 1
            res = api.run_check(spec, jobs=1).result
            for r in res.reports:
                if r.kind == "build-error":
                    continue
                rows.append((design, preset, spec.scenario, f"{r.kind} in {r.function}",
                             r.found_s, r.found_execution, res.complete))
    head = ["design", "preset", "scenario", "report", "found s", "execution"]
    cells = [[d, p, s, rep[:70], f"{t:.2f}" if t is not None else "-",
              str(n) if n is not None else "-"] for d, p, s, rep, t, n, _c in rows]
    w = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(head)]
    print(f"# first report times, {args.arch}, cap {args.cap:g} s per check, one core\n")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    print("  ".join("-" * x for x in w))
    for c in cells:
        print("  ".join(v.rjust(w[i]) if i >= 4 else v.ljust(w[i]) for i, v in enumerate(c)))
    timed = [r for r in rows if r[4] is not None]
    fast = [r for r in timed if r[4] < TARGET_S]
    print(f"\n{len(rows)} reports in {checks} checks ({time.perf_counter() - t_all:.0f} s "
          f"in all); {len(fast)} found in under {TARGET_S:g} s")
    for d, p, s, rep, t, n, _c in sorted(timed, key=lambda r: -r[4])[:5]:
        if t >= TARGET_S:
            print(f"  slow: {t:.2f} s (execution {n}) {d} {p} {s}: {rep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
