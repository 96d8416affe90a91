#!/usr/bin/env python
"""kmodel's exploration benchmarks: prints tables, measured in one run.

    python benchmarks/run.py                 # every part, about 5-9 minutes on 2 cores
    python benchmarks/run.py --parts a,d     # only some parts
    python benchmarks/run.py --quick         # smaller caps, about 2 minutes

Parts:
  a  dpor over every built-in scenario x design (rt and nonrt, x86): executions,
     classes, sleep-blocked executions, executions/s, time to complete
     (or the cap), the process's peak RSS after the cell
  b  time and executions to the first report of each thread bug (C1-C7) under bounded
     K=0..3, pct, random and dpor
  c  scaling: executions and time as pages per memslot grow (1, 2, 4) and as activities
     are added
  d  bookkeeping overhead: the executions of one dpor search, run (1) by dpor with all
     its bookkeeping, (2) replayed with the execution's bookkeeping (clocks, trace, race
     detector) but no search, (3) replayed bare (model code only); ratios (1)/(3) and
     (2)/(3)
  e  side by side with the ``frontrun`` package (if it installs and runs) and with naive
     enumeration on small programs
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from kmodel import api
from kmodel.engine import READ, WRITE, Limits, Op, Report
from kmodel.engine.explore import Collector, bare_replay
from kmodel.engine.strategies import Dpor, Naive, Replay
from kmodel.patches import ORDER
from kmodel.build import prepare
from kmodel.patching import applied
from kmodel.scenarios import SCENARIOS


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(title: str, head: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
         for i, h in enumerate(head)]
    print(f"\n## {title}\n")
    print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    print("  ".join("-" * x for x in w))
    for r in cells:
        print("  ".join(c.rjust(w[i]) if c[:1].isdigit() or c[:1] == "-" else c.ljust(w[i])
                        for i, c in enumerate(r)))
    sys.stdout.flush()


def check(design, preset, scenario, strategy="dpor", arch="x86", **kw):
    spec = api.CheckSpec(patches=[design], preset=preset, arch=arch, scenario=scenario,
                         strategy=strategy, shrink=False, **kw)
    t0 = time.perf_counter()
    cr = api.run_check(spec)
    return cr, time.perf_counter() - t0


# -- a ------------------------------------------------------------------------------------

def part_a(cap: float) -> None:
    rows = []
    tot_ex = tot_t = 0.0
    for d in ORDER:
        for p in ("rt", "nonrt"):
            for s in SCENARIOS:
                cr, dt = check(d, p, s, time_limit=cap)
                r = cr.result
                tot_ex += r.executions
                tot_t += dt
                rows.append([d, p, s, r.executions, r.classes, r.sleep_blocked,
                             f"{r.executions / dt:.0f}" if dt else "-",
                             f"{dt:.2f}" if r.complete else f">{cap:g} (cap)",
                             cr.verdict, f"{rss_mb():.0f}"])
    table(f"a. dpor on every scenario x design (x86; cap {cap:g} s a cell)",
          ["design", "preset", "scenario", "executions", "classes", "sleep-blocked",
           "exec/s", "time s", "verdict", "peak RSS MB"], rows)
    print(f"\ntotal: {tot_ex:.0f} executions in {tot_t:.1f} s "
          f"({tot_ex / tot_t:.0f} executions/s)")


# -- b ------------------------------------------------------------------------------------

BUGS = [
    ("C1", "upstream", "rt", "oom-reap", "x86"),
    ("C2", "v1-raw-mn-lock", "rt", "oom-reap", "x86"),
    ("C2", "v1-raw-mn-lock", "rt", "oom-reap", "arm64"),
    ("C3", "upstream", "rt", "cow-fault-hack", "x86"),
    ("C4", "atomic-count", "rt", "memslot-vs-madvise", "x86"),
    ("C5", "defer-invalidation", "rt", "oom-reap", "x86"),
    ("C6", "oom-enter-unregister", "rt", "oom-reap", "x86"),
    ("C7", "oom-enter-deferred-detach", "rt", "oom-reap", "x86"),
]


def part_b(cap: float, runs: int) -> None:
    strategies = [(f"bounded K={k}", dict(strategy="bounded", preemptions=k))
                  for k in range(4)]
    # bounded(K) alone is iterative (0..K) in the api; run each bound on its own here
    rows = []
    for cid, d, p, s, arch in BUGS:
        row = [cid, d, f"{p}/{arch}", s]
        for k in range(4):
            row.append(_first(d, p, s, arch, cap, lambda: Dpor(preemption_bound=k)))
        row.append(_first_api(d, p, s, arch, cap, strategy="pct", runs=runs, depth=3))
        row.append(_first_api(d, p, s, arch, cap, strategy="random", runs=runs))
        row.append(_first(d, p, s, arch, cap, lambda: Dpor()))
        rows.append(row)
    table(f"b. first report: executions / seconds (cap {cap:g} s; pct depth 3 and random: "
          f"{runs} runs; '-' none found)",
          ["bug", "design", "preset/arch", "scenario"] + [n for n, _ in strategies] +
          ["pct", "random", "dpor"], rows)


def _first(d, p, s, arch, cap, make) -> str:
    spec = api.CheckSpec(patches=[d], preset=p, arch=arch, scenario=s)
    model = prepare(spec)
    patches, fac = model.patches, model.factory
    with applied(patches):
        t0 = time.perf_counter()
        res = make().explore(fac, Limits(stop_on_first=True, time_limit=cap))
    if not res.reports:
        return f"- ({res.executions})"
    return f"{res.first_report_execution} / {res.first_report_s:.2f}"


def _first_api(d, p, s, arch, cap, **kw) -> str:
    cr, dt = check(d, p, s, arch=arch, stop_on_first=True, time_limit=cap, **kw)
    r = cr.result
    if not r.reports:
        return f"- ({r.executions})"
    return f"{r.first_report_execution} / {r.first_report_s:.2f}"


# -- c ------------------------------------------------------------------------------------

def part_c(cap: float) -> None:
    rows = []
    for scen in ("memslot-vs-madvise", "oom-reap", "mrelease"):
        prev = None
        for pages in (1, 2, 4):
            cr, dt = check("upstream", "nonrt", scen, knobs={"pages": pages},
                           time_limit=cap)
            r = cr.result
            grow = f"x{r.executions / prev:.1f}" if prev else ""
            prev = r.executions
            rows.append([scen, f"pages={pages}", r.executions, r.classes,
                         f"{dt:.2f}" if r.complete else f">{cap:g} (cap)", grow])
    prev = None
    for acts in ("oom", "oom,vcpu", "oom,vcpu,madvise", "oom,vcpu,madvise,memslot"):
        cr, dt = check("upstream", "nonrt", acts, time_limit=cap)
        r = cr.result
        grow = f"x{r.executions / prev:.1f}" if prev else ""
        prev = r.executions
        rows.append([acts, "pages=1", r.executions, r.classes,
                     f"{dt:.2f}" if r.complete else f">{cap:g} (cap)", grow])
    table(f"c. scaling (upstream, nonrt, dpor; cap {cap:g} s)",
          ["scenario / activities", "knob", "executions", "classes", "time s",
           "growth"], rows)


# -- d ------------------------------------------------------------------------------------

def part_d(scenario: str) -> None:
    spec = api.CheckSpec(patches=["upstream"], preset="nonrt", scenario=scenario)
    model = prepare(spec)
    patches, fac = model.patches, model.factory
    scheds = []

    class Keep(Collector):
        def add(self, ex):
            if ex.outcome in ("done", "deadlock"):
                scheds.append(list(ex.schedule))
            return super().add(ex)

    rows = []
    with applied(patches):
        t0 = time.perf_counter()
        res = Dpor().explore(fac, Limits(), Keep("dpor", Limits()))
        t_dpor = time.perf_counter() - t0
        d2 = Dpor()
        d2.reuse_prefix = False
        t0 = time.perf_counter()
        d2.explore(fac, Limits())
        t_noreuse = time.perf_counter() - t0
        t0 = time.perf_counter()
        for sc in scheds:
            Replay(sc).run(fac, Limits())
        t_replay = time.perf_counter() - t0
        t0 = time.perf_counter()
        steps = sum(bare_replay(fac, sc, Limits()) for sc in scheds)
        t_bare = time.perf_counter() - t0
    n = len(scheds)
    rows.append(["dpor (prefix re-run bare, bookkeeping taken over)", n, f"{t_dpor:.2f}",
                 f"{t_dpor / t_bare:.2f}"])
    rows.append(["dpor without prefix reuse (every step recorded)", n, f"{t_noreuse:.2f}",
                 f"{t_noreuse / t_bare:.2f}"])
    rows.append(["replay with execution bookkeeping, no search", n, f"{t_replay:.2f}",
                 f"{t_replay / t_bare:.2f}"])
    rows.append(["bare replay (model code only)", n, f"{t_bare:.2f}", "1.00"])
    table(f"d. bookkeeping overhead: upstream/nonrt/{scenario}, {res.executions} "
          f"executions, {steps} steps", ["run", "executions", "seconds", "ratio to bare"],
          rows)


# -- e ------------------------------------------------------------------------------------

class _Cell:
    def __init__(self):
        self.value = 0


class _Counter:
    """n tasks each do x = c; c = x + 1 (a lost update)."""

    def __init__(self, n):
        self.n = n

    def start(self, ex):
        self.ex = ex
        self.c = _Cell()
        for i in range(self.n):
            ex.spawn(f"t{i}", self.body())

    async def body(self):
        await Op(self.c, READ, "read c")
        x = self.c.value
        await Op(self.c, WRITE, "write c")
        self.c.value = x + 1

    def at_deadlock(self, ex, blocked):
        pass

    def at_livelock(self, ex):
        pass

    def at_end(self, ex):
        if self.c.value != self.n:
            ex.report(Report("invariant", "lost update", "t0", "body", [], "lost update"))

    def on_data_race(self, ex, a, b):
        pass


def part_e() -> None:
    rows = []
    for n in (2, 3, 4):
        for strat in (Dpor, Naive):
            t0 = time.perf_counter()
            r = strat().explore(lambda: _Counter(n), Limits(max_executions=20000))
            dt = time.perf_counter() - t0
            rows.append([f"counter n={n}", f"kmodel {strat.__name__.lower()}",
                         f"{r.executions}" + ("" if r.complete else " (cap)"), r.classes,
                         f"{dt * 1000:.1f}", "yes" if r.reports else "no"])
        rows.append([f"counter n={n}"] + _frontrun(n))
    table("e. small programs: kmodel dpor and naive, frontrun (exhaustive, no preemption "
          "bound)", ["program", "tool", "executions", "classes", "ms", "finds bug"], rows)


def _frontrun(n) -> list:
    try:
        from frontrun import cli
        os.environ[cli.FRONTRUN_ACTIVE_ENV] = "1"
        import frontrun
    except Exception as e:        # not installed
        return ["frontrun", "-", "-", "-", f"not available: {type(e).__name__}"]

    class Counter:
        def __init__(self):
            self.value = 0

        def increment(self):
            x = self.value
            self.value = x + 1
    try:
        t0 = time.perf_counter()
        r = frontrun.explore(setup=Counter, workers=Counter.increment, count=n,
                             invariant=lambda c: c.value == n, stop_on_first=False,
                             preemption_bound=None, total_timeout=60)
        dt = time.perf_counter() - t0
        return ["frontrun dpor", r.num_explored, "-", f"{dt * 1000:.1f}",
                "yes" if not r.property_holds else "no"]
    except Exception as e:
        return ["frontrun", "-", "-", "-", f"failed: {type(e).__name__}: {e}"[:60]]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="a,b,c,d,e", help="comma-separated: a,b,c,d,e")
    ap.add_argument("--quick", action="store_true", help="smaller caps")
    ap.add_argument("--cap", type=float, default=None, help="seconds per cell (a, c)")
    ap.add_argument("--bug-cap", type=float, default=None, help="seconds per run (b)")
    ap.add_argument("--runs", type=int, default=500, help="pct/random runs (b)")
    ap.add_argument("--overhead-scenario", default="oom-vs-memslot", help="part d")
    a = ap.parse_args(argv)
    cap = a.cap or (1.5 if a.quick else 4.0)
    bug_cap = a.bug_cap or (2.0 if a.quick else 5.0)
    parts = set(a.parts.split(","))
    t0 = time.perf_counter()
    print(f"kmodel benchmarks: python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    if "a" in parts:
        part_a(cap)
    if "b" in parts:
        part_b(bug_cap, a.runs)
    if "c" in parts:
        part_c(cap * 3)
    if "d" in parts:
        part_d("oom-vs-madvise" if a.quick else a.overhead_scenario)
    if "e" in parts:
        part_e()
    print(f"\nbenchmarks took {time.perf_counter() - t0:.0f} s; peak RSS {rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
