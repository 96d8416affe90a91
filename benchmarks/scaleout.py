"""Scaling out: speed-up of a partitioned check and of the matrix, Ray's overhead, and how
the work items would spread over many workers.

    python benchmarks/scaleout.py                    # everything, a few minutes
    python benchmarks/scaleout.py --skip-matrix --skip-ray
    python benchmarks/scaleout.py --design upstream --preset nonrt --scenario oom-exit

Prints tables; it is not a test.  Times are wall-clock on this machine, so run it on a
quiet one: the first table measures how much parallel CPU the machine really gives (a
pure-Python loop on 1 and on N processes) -- a speed-up cannot beat that.

1. The check: the largest built-in check (v2-call-srcu rt oom-exit, strategy dpor) on
   one core (the sequential search, --jobs 1) and partitioned over N worker processes.
2. The matrix (kmodel matrix --no-build, each check capped by --matrix-time) with
   --jobs 1 and --jobs N.
3. Ray against local processes on this machine (if Ray is installed): the same check on a
   local Ray instance with N CPUs (ray.init(num_cpus=N)), and Ray's start-up time.
4. A projection: the work items of a run with short time slices (each item hands back
   what is left after --slice seconds, as on Ray), list-scheduled on 8, 64 and 512
   workers (an item can start once the item that produced it has finished): how many
   items, their size, the longest one and its share of the total, the longest chain of
   items (the critical path), and the time and speed-up that would give.
"""

from __future__ import annotations

import argparse
import heapq
import os
import statistics
import sys
import time


def _burn(n: int) -> float:
    t0 = time.perf_counter()
    x = 0
    for i in range(n):
        x += i * i
    return time.perf_counter() - t0


def machine(jobs: int) -> float:
    """How many times more CPU work N processes do in the same wall time as one."""
    import multiprocessing as mp
    n = 3_000_000
    one = _burn(n)
    with mp.get_context("spawn").Pool(jobs) as pool:
        pool.map(_burn, [1000] * jobs)                  # started
        t0 = time.perf_counter()
        pool.map(_burn, [n] * jobs)
        many = time.perf_counter() - t0
    return jobs * one / many


def table(title: str, head: list, rows: list) -> None:
    cols = [head] + [[str(c) for c in r] for r in rows]
    w = [max(len(r[i]) for r in cols) for i in range(len(head))]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w[i]) for i, h in enumerate(head)))
    print("  " + "  ".join("-" * w[i] for i in range(len(head))))
    for r in cols[1:]:
        print("  " + "  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                               for i, c in enumerate(r)))


def run_check(spec, **kw):
    from kmodel import api
    t0 = time.perf_counter()
    cr = api.run_check(spec, **kw)
    return cr, time.perf_counter() - t0


def check_section(spec, jobs_list: list[int]) -> dict:
    rows = []
    base = None
    out = {}
    for j in jobs_list:
        cr, wall = run_check(spec, jobs=j)
        r = cr.result
        out[j] = (cr, wall)
        if base is None:
            base = (wall, r.classes, {x.key() for x in r.reports})
        same = (r.classes, {x.key() for x in r.reports}) == base[1:]
        rows.append([f"{j} {'(sequential)' if j == 1 else 'workers'}", f"{wall:.2f}",
                     f"{base[0] / wall:.2f}x", r.executions, r.classes, cr.verdict,
                     "yes" if r.complete else "no", "yes" if same else "NO"])
    table(f"1. kmodel check {'+'.join(spec.patches)} {spec.preset} {spec.arch} "
          f"{spec.scenario} --strategy {spec.strategy}",
          ["jobs", "wall s", "speed-up", "executions", "classes", "verdict", "complete",
           "same classes+reports"], rows)
    return out


def matrix_section(jobs_list: list[int], time_cap: float) -> None:
    from kmodel.matrix import run_matrix
    rows = []
    base = None
    for j in jobs_list:
        t0 = time.perf_counter()
        res = run_matrix(time_per_cell=time_cap, jobs=j)
        wall = time.perf_counter() - t0
        verdicts = [(r.design, r.preset, r.arch, r.verdict, r.scenarios) for r in res]
        if base is None:
            base = (wall, verdicts)
        capped = sum(1 for r in res for c in r.checks if not c.result.complete
                     and not c.result.reports)
        rows.append([f"{j}", f"{wall:.1f}", f"{base[0] / wall:.2f}x", len(res),
                     sum(len(r.checks) for r in res), capped,
                     "yes" if verdicts == base[1] else "NO"])
    table(f"2. kmodel matrix --no-build --time {time_cap:g}",
          ["jobs", "wall s", "speed-up", "rows", "checks", "hit the cap",
           "same verdicts"], rows)


def ray_section(spec, jobs: int, local_wall: float | None) -> None:
    try:
        import ray
    except ImportError:
        print("\n3. Ray: not installed (pip install 'kmodel[ray]'): skipped")
        return
    import logging
    t0 = time.perf_counter()
    ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)

    @ray.remote
    def ping():
        import kmodel.api  # noqa: F401
        return os.getpid()

    ray.get([ping.remote() for _ in range(jobs)])
    started = time.perf_counter() - t0
    try:
        cr, wall = run_check(spec, ray="auto")
        cr2, wall2 = run_check(spec, ray="auto")          # workers warm
    finally:
        ray.shutdown()
    rows = [["ray.init + first tasks", f"{started:.2f}", "", ""]]
    if local_wall is not None:
        rows.append([f"local processes, {jobs} workers", f"{local_wall:.2f}", "1.00x", ""])
    for name, w, c in (("Ray, first check", wall, cr), ("Ray, second check", wall2, cr2)):
        rel = f"{w / local_wall:.2f}x" if local_wall else ""
        what = f"{c.result.executions} executions, {c.result.classes} classes"
        rows.append([name, f"{w:.2f}", rel, what])
    table(f"3. Ray against local processes ({jobs} CPUs, same check)",
          ["", "wall s", "vs local", ""], rows)


def projection(spec, slice_s: float, workers: list[int], jobs: int) -> None:
    """Record the work items of a run with short slices, then list-schedule them."""
    from kmodel.workers import local, partitioned
    old = partitioned.SLICE_S, partitioned.FIRST_SLICE_S, local.SPLIT_WHEN_IDLE
    partitioned.SLICE_S, partitioned.FIRST_SLICE_S = slice_s, slice_s
    local.SPLIT_WHEN_IDLE = False
    stats: list = []
    orig = partitioned._PartitionedDpor.explore

    def explore(self, fac, limits):
        r = orig(self, fac, limits)
        stats.extend(self.engines.stats[-1])
        return r

    partitioned._PartitionedDpor.explore = explore
    try:
        cr, _wall = run_check(spec, jobs=jobs)
    finally:
        partitioned._PartitionedDpor.explore = orig
        partitioned.SLICE_S, partitioned.FIRST_SLICE_S, local.SPLIT_WHEN_IDLE = old
    items = {s[0]: s for s in stats}       # id -> (id, origin, executions, seconds, depth)
    total = sum(s[3] for s in stats)
    execs = [s[2] for s in stats]
    longest = max(stats, key=lambda s: s[3])
    # the critical path: the longest chain item <- the item that produced it <- ...
    finish: dict = {}
    for i in sorted(items):
        s = items[i]
        finish[i] = finish.get(s[1], 0.0) + s[3]
    critical = max(finish.values())
    rows = []
    for w in workers:
        t = _schedule(stats, w)
        rows.append([w, len(stats), f"{statistics.mean(execs):.1f} / {max(execs)}",
                     f"{longest[3]:.3f} s ({100 * longest[3] / total:.2f} %)",
                     f"{critical:.2f} s", f"{t:.2f}", f"{total / t:.1f}x",
                     f"{100 * total / (t * w):.0f} %"])
    print(f"\n4. Projection: {len(stats)} work items of ~{slice_s:g} s recorded on {jobs} "
          f"workers ({cr.result.executions} executions, {total:.1f} s of work)")
    table("   list-scheduled on W workers",
          ["W", "items", "executions/item mean / max", "longest item (share)",
           "critical path", "time s", "speed-up", "busy"], rows)


def _schedule(stats: list, w: int) -> float:
    """Greedy list scheduling: an item is ready when its origin has finished."""
    by_origin: dict = {}
    for s in stats:
        by_origin.setdefault(s[1], []).append(s)
    ready = [(0.0, s[0], s) for s in by_origin.get(0, [])]
    heapq.heapify(ready)
    free = [0.0] * w
    heapq.heapify(free)
    end = 0.0
    while ready:
        at, _, s = heapq.heappop(ready)
        start = max(at, heapq.heappop(free))
        done = start + s[3]
        heapq.heappush(free, done)
        end = max(end, done)
        for c in by_origin.get(s[0], []):
            heapq.heappush(ready, (done, c[0], c))
    return end


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--design", default="v2-call-srcu")
    ap.add_argument("--preset", default="rt")
    ap.add_argument("--arch", default="x86")
    ap.add_argument("--scenario", default="oom-exit")
    ap.add_argument("--strategy", default="dpor")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="workers to compare with one [default: every core]")
    ap.add_argument("--matrix-time", type=float, default=2.0,
                    help="--time of each matrix check [default: 2]")
    ap.add_argument("--slice", type=float, default=0.05,
                    help="time slice of the projection's run [default: 0.05]")
    ap.add_argument("--skip-check", action="store_true")
    ap.add_argument("--skip-matrix", action="store_true")
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--skip-projection", action="store_true")
    a = ap.parse_args()
    from kmodel import api
    spec = api.CheckSpec(patches=[a.design], preset=a.preset, arch=a.arch,
                         scenario=a.scenario, strategy=a.strategy)
    jobs_list = [1] + ([a.jobs] if a.jobs > 1 else [])
    print(f"kmodel scale-out benchmark: {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}")
    par = machine(a.jobs)
    print(f"this machine runs {par:.2f}x the CPU work of one process on {a.jobs} processes "
          f"(ideal: {a.jobs}x; less means other load or shared cores)")
    local_wall = None
    if not a.skip_check:
        out = check_section(spec, jobs_list)
        if a.jobs in out and a.jobs > 1:
            local_wall = out[a.jobs][1]
    if not a.skip_matrix:
        matrix_section(jobs_list, a.matrix_time)
    if not a.skip_ray:
        ray_section(spec, a.jobs, local_wall)
    if not a.skip_projection:
        projection(spec, a.slice, [8, 64, 512], a.jobs)


if __name__ == "__main__":
    main()
