#!/usr/bin/env python3
"""Mutation testing of the kernel model: does some built-in check notice each small fault?

    python tools/mutate.py [--quick] [--proposed] [--only NAME[,NAME]] [--jobs N]
                           [--time-limit S]

For each mutant of tools/mutants.py (applied alone, in this process, by replacing kfunc
bodies), every built-in scenario runs with the upstream design under the rt and nonrt
presets (api.run_check, strategy dpor, a time limit per cell).  A mutant is *killed* when
some cell reports a report key (kind, function, title) that the unmutated model's cell
does not; a cell that crashes (an exception out of the model) also kills it, marked as a
crash.  Reports the mutant *loses* are shown too, but do not count as a kill -- except the
EXPECTED ones, the reports the thread itself observed on upstream: a mutant that makes a
completed cell lose one of those is killed ("lost").

The unmutated baseline always runs to completion (no time limit), so a time-limited
mutant cell can never look killed only because the baseline was cut short.

--quick: 4 s per cell, and a mutant stops at its first killing cell (cells cheapest
first).  Without it: 60 s per cell, every cell.

--proposed: also run the survivors on the scenarios proposed to kill them (PROPOSED;
compositions of existing activities).  Their baselines are too large to finish, so they
run with a longer time limit and a kill there is a candidate: a report key the upstream
model did not show in that time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kmodel import api, scenarios  # noqa: E402

from mutants import MUTANTS, mutated  # noqa: E402

PRESETS = ("rt", "nonrt")
# cheapest first (dpor executions of the upstream model), so that --quick stops early
SCENARIO_ORDER = ["oom-reap-nomemslot", "cow-fault-hack", "other-mm", "oom-reap",
                  "mrelease", "reclaim", "oom-fault", "memslot-vs-madvise", "oom-vm-close",
                  "oom-vs-madvise", "oom-vs-memslot", "oom-exit"]

# Reports the upstream model must show: what the thread observed on real kernels.
# (preset, scenario) -> [(kind, function)].  A mutant whose completed cell lacks one is
# killed: it no longer reproduces the bug the model exists to show.  The 2026 report:
# oom_reaper on PREEMPT_RT, "BUG: sleeping function called from invalid context" in
# KVM's invalidate_range_start (claim C1, tests/test_model_claims.py).
EXPECTED = {
    ("rt", "oom-reap"): [("sleep-in-atomic", "kvm_mmu_notifier_invalidate_range_start")],
}


def lost_expected(cell, keys) -> list:
    """The EXPECTED (kind, function) pairs of ``cell`` that ``keys`` lacks, as kill keys."""
    have = {(k[0], k[1]) for k in keys}
    return [(f"lost {kind}", fn, "expected report missing")
            for kind, fn in EXPECTED.get(cell, []) if (kind, fn) not in have]


def cells():
    names = [s for s in SCENARIO_ORDER if s in scenarios.SCENARIOS]
    names += [s for s in scenarios.SCENARIOS if s not in names]
    return [(p, s) for s in names for p in PRESETS]


def run_cell(preset, scenario, time_limit):
    spec = api.CheckSpec(patches=["upstream"], preset=preset, scenario=scenario,
                         strategy="dpor", time_limit=time_limit)
    t0 = time.perf_counter()
    try:
        res = api.run_check(spec)
    except Exception as e:                       # a crash of the mutated model
        return {"crash": f"{type(e).__name__}: {e}"[:160], "keys": set(), "complete": False,
                "executions": 0, "s": time.perf_counter() - t0}
    r = res.result
    return {"crash": None, "keys": {rep.key() for rep in r.reports},
            "complete": r.complete, "executions": r.executions,
            "s": time.perf_counter() - t0}


def _baseline_job(cell):
    preset, scenario = cell
    return cell, run_cell(preset, scenario, None)


def _mutant_job(args):
    name, baseline, time_limit, stop_first = args
    mutant = MUTANTS[name]
    t0 = time.perf_counter()
    out = {"name": name, "kills": [], "lost": [], "crash": None, "cells": 0,
           "incomplete": 0}
    with mutated(mutant):
        for cell in cells():
            res = run_cell(*cell, time_limit)
            out["cells"] += 1
            if res["crash"]:
                out["crash"] = (cell, res["crash"])
                out["kills"].append((cell, ("crash", res["crash"], "")))
                if stop_first:
                    break
                continue
            if not res["complete"]:
                out["incomplete"] += 1
            base = baseline[cell]["keys"]
            new = sorted(res["keys"] - base)
            if res["complete"]:
                new += lost_expected(cell, res["keys"])
            out["kills"] += [(cell, k) for k in new]
            if res["complete"]:
                out["lost"] += [(cell, k) for k in sorted(base - res["keys"])]
            if new and stop_first:
                break
    out["s"] = time.perf_counter() - t0
    return out


# Scenarios proposed for survivors, too large for the matrix: (activities, knobs, what
# they add).  Empty since oom-fault (a guest not yet faulted in) kills what
# "oom,madvise,vcpu" with heap=False was proposed for, in 76 executions.
PROPOSED: list = []


def _proposed_baseline_job(args):
    sc, knobs, preset, time_limit = args
    spec = api.CheckSpec(patches=["upstream"], preset=preset, scenario=sc, knobs=knobs,
                         strategy="dpor", time_limit=time_limit)
    r = api.run_check(spec).result
    return (sc, preset), {"keys": {x.key() for x in r.reports}, "complete": r.complete,
                          "executions": r.executions}


def _proposed_mutant_job(args):
    name, sc, knobs, preset, time_limit, base = args
    spec = api.CheckSpec(patches=["upstream"], preset=preset, scenario=sc, knobs=knobs,
                         strategy="dpor", time_limit=time_limit)
    with mutated(MUTANTS[name]):
        try:
            r = api.run_check(spec).result
        except Exception as e:
            return name, sc, preset, [("crash", f"{type(e).__name__}: {e}"[:80], "")]
    return name, sc, preset, sorted({x.key() for x in r.reports} - base["keys"])


# Why a survivor survives: filled in from the last full run (see the report); printed
# next to each survivor.  The equivalent mutants (no observable change in this model):
SURVIVOR_NOTES = {
    "reap-free-before-range_end":
        "equivalent for KVM: its SPTEs are zapped and its TLBs flushed in range_start, "
        "and a fault retries until range_end, so freeing before range_end is safe (a "
        "secondary MMU that flushed only in range_end would make it a use-after-free; "
        "the model has none)",
    "release-no-synchronize_srcu":
        "equivalent with KVM as the only subscriber: the synchronize_srcu() keeps "
        "exit_mmap from freeing pages while a ->release called by a concurrent "
        "mmu_notifier_unregister still runs.  KVM's ->release zaps under "
        "write_lock(mmu_lock), and exit_mmap's mn_hlist_release either finds KVM still "
        "hashed and calls that same ->release itself (it cannot return before a concurrent "
        "zap has finished: both hold mmu_lock for write) or finds it unhashed, which "
        "unregister does only after its ->release returned; struct kvm's lifetime is "
        "guarded by unregister's own synchronize_srcu (oom-vm-close kills its removal)",
    "x86-fault-put-page-early":
        "equivalent in this model: every path that frees a mapped page invalidates first, "
        "so the retry check alone keeps a freed page from being mapped (the GUP reference "
        "guards against frees the model has no path for, e.g. truncation of a file page)",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--proposed", action="store_true")
    ap.add_argument("--proposed-time-limit", type=float, default=30.0)
    args = ap.parse_args(argv)
    time_limit = args.time_limit or (4.0 if args.quick else 60.0)
    names = [n for n in args.only.split(",") if n] or list(MUTANTS)
    bad = [n for n in names if n not in MUTANTS]
    if bad:
        ap.error(f"unknown mutant(s) {bad}; mutants: {', '.join(MUTANTS)}")

    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.jobs) as pool:
        baseline = dict(pool.map(_baseline_job, cells(), chunksize=1))
        print(f"baseline: {len(baseline)} cells (upstream x {{rt,nonrt}} x "
              f"{len(baseline) // 2} scenarios), complete, "
              f"{sum(c['executions'] for c in baseline.values())} executions, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        for cell, b in baseline.items():
            if b["crash"] or not b["complete"]:
                print(f"  baseline cell {cell} did not complete: {b['crash']}")
        for cell in EXPECTED:
            if cell in baseline and lost_expected(cell, baseline[cell]["keys"]):
                print(f"  baseline cell {cell} lacks an EXPECTED report: "
                      f"{lost_expected(cell, baseline[cell]['keys'])}")
        jobs = [(n, baseline, time_limit, args.quick) for n in names]
        results = []
        w = max(len(n) for n in names)
        print(f"\n{'mutant':<{w}}  killed  {'by (preset scenario: kind @ function)':<70} "
              f"lost  time")
        for out in pool.imap(_mutant_job, jobs):
            results.append(out)
            if out["kills"]:
                (preset, sc), key = out["kills"][0]
                by = f"{preset} {sc}: {key[0]} @ {key[1]}"
                if key[0] == "crash":
                    by = f"{preset} {sc}: crash {key[1][:50]}"
                more = len({c for c, _ in out["kills"]})
                if more > 1:
                    by += f" (+{more - 1} cells)"
            else:
                by = "-"
            print(f"{out['name']:<{w}}  {'yes' if out['kills'] else 'NO ':<6}  {by:<70} "
                  f"{len(out['lost']):>4}  {out['s']:5.1f}s", flush=True)

    killed = [o for o in results if o["kills"]]
    print(f"\nkill rate: {len(killed)}/{len(results)} = "
          f"{100 * len(killed) / max(1, len(results)):.0f}%  "
          f"(time limit {time_limit:g} s per cell{', first kill only' if args.quick else ''}; "
          f"total {time.perf_counter() - t0:.0f} s)")
    lost_only = [o for o in results if not o["kills"] and o["lost"]]
    if lost_only:
        print(f"counting lost reports as kills too: "
              f"{len(killed) + len(lost_only)}/{len(results)}")
    survivors = [o for o in results if not o["kills"]]
    if survivors:
        print("\nsurvivors:")
        for o in survivors:
            note = SURVIVOR_NOTES.get(o["name"], "(no note: investigate)")
            lost = ""
            if o["lost"]:
                lost = " [loses: " + "; ".join(
                    f"{p} {s}: {k[0]}" for (p, s), k in o["lost"][:2]) + "]"
            print(f"  {o['name']}: {note}{lost}")
    if args.proposed and survivors:
        with ctx.Pool(args.jobs) as pool:
            tl = args.proposed_time_limit
            jobs = [(sc, knobs, p, 4 * tl) for sc, knobs, _ in PROPOSED for p in PRESETS]
            pbase = dict(pool.map(_proposed_baseline_job, jobs, chunksize=1))
            print(f"\nproposed scenarios (baseline {4 * tl:g} s, mutants {tl:g} s):")
            for sc, knobs, why in PROPOSED:
                for p in PRESETS:
                    b = pbase[(sc, p)]
                    print(f"  {p} {sc} {knobs}: {why}; upstream baseline "
                          f"{'complete' if b['complete'] else 'incomplete'} after "
                          f"{b['executions']} executions, {len(b['keys'])} report keys")
            mjobs = [(o["name"], sc, knobs, p, tl, pbase[(sc, p)])
                     for o in survivors for sc, knobs, _ in PROPOSED for p in PRESETS]
            got: dict = {}
            for name, sc, p, new in pool.imap(_proposed_mutant_job, mjobs):
                if new:
                    got.setdefault(name, []).append((p, sc, new[0]))
            for o in survivors:
                if o["name"] in got:
                    p, sc, k = got[o["name"]][0]
                    print(f"  {o['name']}: killed by proposed {p} {sc}: {k[0]} @ {k[1]}")
                else:
                    print(f"  {o['name']}: survives the proposed scenarios too")
            print(f"kill rate with the proposed scenarios: "
                  f"{len(killed) + len(got)}/{len(results)}")
    if args.quick:
        return 0
    print("\nall kills:")
    for o in killed:
        for (p, s), k in o["kills"]:
            print(f"  {o['name']}: {p} {s}: {k[0]} @ {k[1]}: {k[2][:80]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
