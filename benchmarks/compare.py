#!/usr/bin/env python
"""Executions per second of two source trees, side by side, in one run.

    python benchmarks/compare.py OLD_SRC NEW_SRC [--reps 5] [--executions 600]

OLD_SRC and NEW_SRC are directories holding a ``kmodel`` package (e.g. ``src`` of two
git worktrees).  Each check runs a fixed number of DPOR executions in a fresh process
per tree, the trees alternating, ``--reps`` times.  Speed is executions per second of
*CPU time* of that process (``time.process_time``), which a machine shared with other
jobs disturbs far less than wall time; the table gives the median over repetitions and
the ratio NEW/OLD per check, and each check also says whether both trees ran the same
executions and classes (a speed-up must not change the search).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHECKS = [
    ("upstream", "nonrt", "memslot,madvise,oom"),
    ("upstream", "nonrt", "oom-exit"),
    ("v2-call-srcu", "rt", "oom-exit"),
]

_RUN = """
import json, sys, time
from kmodel.api import CheckSpec, run_check
patch, preset, scenario, n = sys.argv[1:5]
spec = CheckSpec(patches=[patch], preset=preset, scenario=scenario, strategy="dpor",
                 max_executions=int(n), shrink=False)
t0 = time.process_time()
r = run_check(spec, jobs=1).result
cpu = time.process_time() - t0
print(json.dumps({"executions": r.executions, "classes": r.classes, "cpu": cpu}))
"""


def run(src: str, check, executions: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src))
    out = subprocess.run([sys.executable, "-c", _RUN, *check, str(executions)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--executions", type=int, default=600)
    args = ap.parse_args(argv)
    rows = []
    for check in CHECKS:
        speed: dict = {"old": [], "new": []}
        counts: dict = {}
        for _ in range(args.reps):
            for which in ("old", "new"):
                r = run(getattr(args, which), check, args.executions)
                speed[which].append(r["executions"] / max(r["cpu"], 1e-9))
                counts[which] = (r["executions"], r["classes"])
        old, new = statistics.median(speed["old"]), statistics.median(speed["new"])
        rows.append((" ".join(check), f"{old:.0f}", f"{new:.0f}", f"{new / old:.2f}",
                     "yes" if counts["old"] == counts["new"] else
                     f"NO {counts['old']} vs {counts['new']}",
                     " ".join(f"{x / statistics.median(speed['old']):.2f}"
                              for x in speed["new"])))
    head = ("check (patch preset scenario)", "old exec/s", "new exec/s", "new/old",
            "same search", "each new rep / old median")
    width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print(f"{args.executions} dpor executions per check, {args.reps} repetitions, "
          "CPU-time speeds (medians)\n")
    print("| " + " | ".join(h.ljust(width[i]) for i, h in enumerate(head)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in width) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(width[i]) for i, c in enumerate(r)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
