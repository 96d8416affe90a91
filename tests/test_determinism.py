"""Determinism: a report replays from its record to the same text; the same seed gives
the same random run; nothing depends on PYTHONHASHSEED."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kmodel import api

CHECKS = [
    ("upstream", "oom-reap"),
    ("atomic-count", "memslot-vs-madvise"),
    ("oom-enter-unregister", "oom-reap"),
]


def _check(patch, scenario, **kw):
    return api.run_check(api.CheckSpec(patches=[patch], preset="rt", scenario=scenario, **kw))


@pytest.mark.parametrize("patch,scenario", CHECKS)
def test_every_report_replays_to_identical_text(patch, scenario):
    res = _check(patch, scenario)
    assert res.result.reports, "these checks are known to report"
    for rep in res.result.reports:
        record = res.replay_record(rep)
        # the record is what a user saves: it must survive JSON
        record = json.loads(json.dumps(record))
        again = api.replay(record)
        same = [r for r in again.result.reports if r.key() == rep.key()]
        assert len(same) == 1, f"replay of {rep.kind} in {rep.function} lost it"
        got = same[0]
        assert got.text == rep.text                       # byte-identical
        assert (got.kind, got.title, got.task, got.function, got.trace, got.step) == \
            (rep.kind, rep.title, rep.task, rep.function, rep.trace, rep.step)
        assert got.schedule == rep.schedule
        # and a second replay is identical to the first, trace and all
        third = api.replay(record)
        assert third.trace == again.trace and third.outcome == again.outcome
        assert [r.to_dict() for r in third.result.reports] == \
            [r.to_dict() for r in again.result.reports]


def _stable(d: dict) -> dict:
    d = dict(d)
    d.pop("elapsed_s", None)
    return d


@pytest.mark.parametrize("patch,scenario", CHECKS[:2])
def test_same_seed_same_random_results(patch, scenario):
    a = _check(patch, scenario, strategy="random", runs=60, seed=1234)
    b = _check(patch, scenario, strategy="random", runs=60, seed=1234)
    assert json.dumps(_stable(a.to_dict()), sort_keys=True) == \
        json.dumps(_stable(b.to_dict()), sort_keys=True)
    assert a.result.executions == 60


def test_runs_of_a_random_walk_can_be_repeated_alone():
    """The seed of run i is seed + i: run i of a walk is run 0 of a walk from seed + i."""
    walk = _check("upstream", "oom-vs-madvise", strategy="random", runs=12, seed=40)
    assert walk.result.reports
    keys = set()
    for i in range(12):
        alone = _check("upstream", "oom-vs-madvise", strategy="random", runs=1,
                       seed=40 + i)
        keys |= {r.key() for r in alone.result.reports}
        if i == walk.result.first_report_execution - 1:
            assert alone.result.reports[0].to_dict() == walk.result.reports[0].to_dict()
    assert keys == {r.key() for r in walk.result.reports}


_CHILD = r"""
import json, sys
from kmodel import api
out = []
for patch, scenario, strategy in [("upstream", "oom-reap", "default"),
                                  ("atomic-count", "memslot-vs-madvise", "dpor"),
                                  ("oom-enter-unregister", "oom-reap", "default"),
                                  ("upstream", "oom-vs-madvise", "random")]:
    r = api.run_check(api.CheckSpec(patches=[patch], preset="rt", scenario=scenario,
                                    strategy=strategy, runs=40, seed=3))
    d = r.to_dict()
    d.pop("elapsed_s")
    out.append(d)
print(json.dumps(out, sort_keys=True))
"""


def test_results_do_not_depend_on_pythonhashseed():
    outs = []
    for seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        p = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(p.stdout)
    a, b = (json.loads(o) for o in outs)
    assert len(a) == 4
    for x, y in zip(a, b):
        assert x == y, f"{x['patches']} {x['scenario']} differs between hash seeds"


_CLASS_HASH_CHILD = r"""
from kmodel import api
from kmodel.build import prepare
from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor
from kmodel.patching import applied
spec = api.CheckSpec(preset="rt", scenario="oom-reap", strategy="dpor")
model = prepare(spec)
patches, fac = model.patches, model.factory
made = []
def factory():
    made.append(fac())
    return made[-1]
with applied(patches):
    res = Dpor().explore(factory, Limits(max_steps=spec.max_steps))
hashes = sorted({p.ex.class_hash() for p in made if p.ex.outcome != "sleep-blocked"})
assert len(hashes) == res.classes
print(res.classes, hashes)
"""


def test_class_fingerprints_do_not_depend_on_pythonhashseed():
    """``Execution.class_hash()`` (which also counts classes across the worker processes
    of a parallel search) is the same number in every process, whatever the seed."""
    outs = []
    for seed in ("0", "12345"):
        p = subprocess.run([sys.executable, "-c", _CLASS_HASH_CHILD],
                           env=dict(os.environ, PYTHONHASHSEED=seed), capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        outs.append(p.stdout)
    assert outs[0] == outs[1]
    assert int(outs[0].split()[0]) > 1


# -- resources ------------------------------------------------------------------------------
#
# The search is stateless: memory is bounded by the depth of the search (its path and the
# wakeup trees along it), not by the number of executions.  Measured on the largest
# built-in check (upstream nonrt oom-exit, dpor, 7226 executions): peak RSS 17 MB after
# import, 25 MB after 1000 executions, 35 MB at ~2500-3000 executions and flat from there
# to the end; after the run, under 100 KB of Python heap is still held.

_RSS_CHILD = r"""
import json, resource, sys
from kmodel import api
n = None if sys.argv[1] == "all" else int(sys.argv[1])
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = api.run_check(api.CheckSpec(preset="nonrt", scenario=sys.argv[2], strategy="dpor",
                                  max_executions=n))
r1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"executions": res.result.executions, "complete": res.result.complete,
                  "import_kb": r0, "peak_kb": r1}))
"""


def _peak_rss(n, scenario):
    p = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(n), scenario],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout)


def test_memory_retained_after_a_run_does_not_grow_with_executions():
    import gc
    import tracemalloc
    held = {}
    tracemalloc.start()
    try:
        for n in (50, None):
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            res = api.run_check(api.CheckSpec(preset="nonrt", scenario="memslot-vs-madvise",
                                              strategy="dpor", max_executions=n))
            del res
            gc.collect()
            held[n] = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held[50] < 512 * 1024 and held[None] < 512 * 1024, held


@pytest.mark.skipif(not os.environ.get("KMODEL_LONG"), reason="KMODEL_LONG=1: ~1 min")
def test_peak_rss_of_the_largest_check_is_bounded():
    first = _peak_rss(1000, "oom-exit")
    full = _peak_rss("all", "oom-exit")
    print(f"\noom-exit nonrt dpor: peak RSS {first['peak_kb'] / 1024:.1f} MB after "
          f"{first['executions']} executions, {full['peak_kb'] / 1024:.1f} MB after all "
          f"{full['executions']} (import: {full['import_kb'] / 1024:.1f} MB)")
    assert full["complete"]
    # bounded by depth: seven times the executions, well under twice the memory
    assert full["peak_kb"] - full["import_kb"] < 2 * (first["peak_kb"] - first["import_kb"]) \
        + 16 * 1024
    assert full["peak_kb"] < 256 * 1024


def test_peak_rss_does_not_scale_with_executions():
    """A quick form of the above on a small check (memslot-vs-madvise, 65 executions;
    oom-vs-madvise has 6400 since the rw locks are fair)."""
    few = _peak_rss(10, "memslot-vs-madvise")
    full = _peak_rss("all", "memslot-vs-madvise")
    assert full["complete"] and full["executions"] >= 6 * few["executions"]
    assert full["peak_kb"] - few["peak_kb"] < 24 * 1024, (few, full)
