#!/usr/bin/env python
"""What each reduction contributes: the same exhaustive checks on several source trees,
in one run, with the factor each tree gains over the one before it.

    python benchmarks/reductions.py before=/tmp/base/src dec=/tmp/dec/src now=src
    python benchmarks/reductions.py a=OLD b=NEW --cap 60 --check upstream,nonrt,oom-exit

Each LABEL=SRC names a directory holding a ``kmodel`` package (``src`` of a git worktree
at the commit before a technique, at the commit that adds it, ...), in the order the
techniques were added.  Every check runs ``--strategy dpor --jobs 1`` in a fresh process
per tree, capped at ``--cap`` seconds of CPU-bound search.  Columns per tree:
executions, classes, whether the search completed, CPU seconds; and per check the factor
of each tree over the previous one in executions (where both completed: ``x`` = fewer
executions for the same verdict; ">" where only the later one completed).  Executions
and classes are deterministic; CPU seconds are not (a shared machine), but all come
from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHECKS = [
    ("upstream", "nonrt", "oom-vs-memslot"),
    ("upstream", "nonrt", "oom-vm-close"),
    ("upstream", "nonrt", "oom-exit"),
    ("upstream", "rt", "oom-exit"),
    ("v2-call-srcu", "rt", "oom-exit"),
    ("upstream", "nonrt", "madvise,munmap,exit"),
    ("upstream", "nonrt", "memslot,madvise,exit"),
    ("upstream", "nonrt", "memslot,madvise,oom"),
]

_RUN = """
import json, sys, time
from kmodel.api import CheckSpec, run_check
patch, preset, scenario, cap = sys.argv[1:5]
spec = CheckSpec(patches=[patch], preset=preset, scenario=scenario, strategy="dpor",
                 time_limit=float(cap), shrink=False)
t0 = time.process_time()
r = run_check(spec, jobs=1).result
print(json.dumps({"executions": r.executions, "classes": r.classes,
                  "complete": r.complete, "cpu": time.process_time() - t0,
                  "reports": sorted(f"{x.kind} in {x.function}" for x in r.reports)}))
"""


def run(src: str, check, cap: float) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), KMODEL_NO_CACHE="1")
    out = subprocess.run([sys.executable, "-c", _RUN, *check, str(cap)], env=env,
                         capture_output=True, text=True, timeout=cap * 4 + 120)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", metavar="LABEL=SRC")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds per check")
    ap.add_argument("--check", action="append", metavar="DESIGN,PRESET,SCENARIO",
                    help="instead of the default checks (repeatable)")
    args = ap.parse_args(argv)
    trees = []
    for t in args.trees:
        label, sep, src = t.partition("=")
        if not sep or not os.path.isdir(os.path.join(src, "kmodel")):
            print(f"reductions: {t!r} is not LABEL=SRC with a kmodel package in SRC",
                  file=sys.stderr)
            return 2
        trees.append((label, src))
    checks = [tuple(c.split(",", 2)) for c in args.check] if args.check else CHECKS
    print(f"# dpor --jobs 1, cap {args.cap:g} s per check; trees: "
          + ", ".join(label for label, _ in trees) + "\n")
    head = ["check"] + [f"{label}: executions/classes/s" for label, _ in trees] + \
        [f"{b} vs {a}" for (a, _), (b, _) in zip(trees, trees[1:])]
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for check in checks:
        res = [run(src, check, args.cap) for _label, src in trees]
        cells = [" ".join(check)]
        for r in res:
            if "error" in r:
                cells.append(f"error: {r['error'][:60]}")
            else:
                mark = "" if r["complete"] else " (cap)"
                cells.append(f"{r['executions']}/{r['classes']}/{r['cpu']:.0f}{mark}")
        for a, b in zip(res, res[1:]):
            if "error" in a or "error" in b:
                cells.append("-")
            elif a["complete"] and b["complete"]:
                same = "" if a["reports"] == b["reports"] else " (reports differ!)"
                cells.append(f"{a['executions'] / max(1, b['executions']):.2f}x{same}")
            elif b["complete"]:
                cells.append(f">{a['executions'] / max(1, b['executions']):.2f}x")
            else:
                cells.append("-")
        print(" | ".join(cells))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
