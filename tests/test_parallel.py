"""Scaling out: the partitioned search and the parallel matrix give what the sequential
ones give (kmodel.workers, kmodel.engine.partition)."""

from __future__ import annotations

import itertools
import os
import pickle
import random
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from kmodel import api
from kmodel.build import prepare
from kmodel.cli import cli
from kmodel.engine import Limits
from kmodel.engine.partition import Partitioned, SliceCollector, run_item
from kmodel.engine.strategies import Dpor
from kmodel.matrix import run_matrix
from kmodel.patching import applied
from kmodel.workers import partitioned


@pytest.fixture
def small_slices(monkeypatch):
    """Work items of a few executions each, and none run in this process: every check
    below is really split over the workers, however small."""
    monkeypatch.setattr(partitioned, "SLICE_S", 0.01)
    monkeypatch.setattr(partitioned, "FIRST_SLICE_S", 0.0)


def _keys(cr) -> set:
    return {r.key() for r in cr.result.reports}


def _without_times(d: dict) -> dict:
    d = dict(d)
    d.pop("elapsed_s", None)
    return d


CHECKS = [
    (["upstream"], "rt", "oom-reap"),
    (["upstream"], "nonrt", "memslot-vs-madvise"),
    (["atomic-count"], "rt", "memslot-vs-madvise"),
]


@pytest.mark.parametrize("patches,preset,scenario", CHECKS)
def test_partitioned_dpor_finds_what_the_sequential_one_finds(small_slices, patches,
                                                             preset, scenario):
    spec = api.CheckSpec(patches=patches, preset=preset, scenario=scenario,
                         strategy="dpor")
    seq = api.run_check(spec)
    par = api.run_check(spec, jobs=2)
    assert par.verdict == seq.verdict
    assert _keys(par) == _keys(seq)
    assert par.result.classes == seq.result.classes
    assert par.result.complete and seq.result.complete
    assert par.result.note.startswith("partitioned")      # it was split


def test_default_strategy_partitioned(small_slices):
    """The default strategy (bounded search, then dpor) composes the same way."""
    spec = api.CheckSpec(scenario="oom-reap", preset="rt")
    seq = api.run_check(spec)
    par = api.run_check(spec, jobs=2)
    assert (par.verdict, par.strategy_used, _keys(par)) == \
        (seq.verdict, seq.strategy_used, _keys(seq))
    assert par.result.classes == seq.result.classes
    assert [r.key() for r in par.result.reports] == [r.key() for r in seq.result.reports]


def test_random_walks_split_by_seed_equal_the_sequential_run():
    spec = api.CheckSpec(scenario="memslot-vs-madvise", preset="rt", strategy="random",
                         runs=40, seed=3)
    seq = api.run_check(spec)
    par = api.run_check(spec, jobs=2)
    assert _without_times(par.to_dict()) == _without_times(seq.to_dict())
    assert par.result.classes == seq.result.classes


def test_pct_runs_split_by_seed_equal_the_sequential_run():
    spec = api.CheckSpec(scenario="oom-reap", preset="rt", strategy="pct", runs=30,
                         seed=5, shrink=False)
    seq = api.run_check(spec)
    par = api.run_check(spec, jobs=2)
    assert _without_times(par.to_dict()) == _without_times(seq.to_dict())


def test_matrix_rows_do_not_depend_on_jobs():
    args = dict(designs=["upstream", "v1-raw-mn-lock"], presets=["rt"], arches=["x86"],
                scenarios=["oom-reap", "memslot-vs-madvise"], time_per_cell=20)
    one = run_matrix(**args, jobs=1)
    two = run_matrix(**args, jobs=2)

    def comparable(rows):
        out = []
        for row in rows:
            row = dict(vars(row))
            row.pop("elapsed_s")
            row["checks"] = [_without_times(c.to_dict()) for c in row["checks"]]
            out.append(row)
        return out

    assert comparable(two) == comparable(one)
    assert len(two) == 2 and all(r.scenarios for r in two)


# -- the coordinator alone, against adversarial scheduling ------------------------------

class ShuffledBackend:
    """Runs work items in this process, finishing them in a random order (as workers of
    uneven speed would), each through pickle (as between processes).  With ``split``,
    an item ends its slice after each execution with that probability (as when other
    workers wait for work); without, after one execution."""

    def __init__(self, factory, slots: int, seed: int, split: float | None = None):
        self.factory = factory
        self.slots = slots
        self.rng = random.Random(seed)
        self.split = split
        self.items: dict = {}
        self.results: dict = {}
        self.ids = itertools.count()

    def submit(self, item):
        h = next(self.ids)
        self.items[h] = pickle.loads(pickle.dumps(item))
        return h

    def wait(self, handles, timeout):
        h = self.rng.choice(handles)
        hungry = None if self.split is None else (lambda: self.rng.random() < self.split)
        res = run_item(self.factory, self.items.pop(h), hungry=hungry)
        self.results[h] = pickle.loads(pickle.dumps(res))
        return [h]

    def result(self, h):
        return self.results.pop(h)

    def stop(self, handles):
        pass


@pytest.mark.parametrize("patches,preset,scenario,seed,split", [
    (["upstream"], "rt", "oom-reap", 1, None),
    (["atomic-count"], "rt", "memslot-vs-madvise", 2, None),
    (["upstream"], "nonrt", "memslot-vs-madvise", 3, 0.2),
    (["v2-call-srcu"], "rt", "oom-vs-madvise", 4, 0.05),
    (["upstream"], "rt", "oom-vs-madvise", 5, 0.02),
])
def test_coordinator_explores_every_class_in_any_completion_order(patches, preset,
                                                                   scenario, seed, split):
    spec = api.CheckSpec(patches=patches, preset=preset, scenario=scenario)
    model = prepare(spec)
    pats, fac = model.patches, model.factory
    with applied(pats):
        col = SliceCollector("dpor", Limits())
        seq = Dpor().explore(fac, Limits(), col)
        part = Partitioned(ShuffledBackend(fac, 3, seed, split), slice_s=0.0,
                           first_slice_s=0.0)
        par = part.explore(Limits())
    fps = set().union(*(c[1].fingerprints for c in part._chunks))
    assert fps == col.part(0).fingerprints          # the very same classes
    # ... each explored once: no subtree is explored again (an earlier coordinator
    # re-explored subtrees, and on oom-exit ran ten times the sequential executions)
    assert sum(len(c[1].fingerprints) for c in part._chunks) == len(fps)
    assert par.executions <= seq.executions + seq.executions // 10
    assert par.classes == seq.classes
    assert {r.key() for r in par.reports} == {r.key() for r in seq.reports}
    assert par.complete and seq.complete
    assert len(part.stats) > 1
    if split is None:
        assert max(s[2] for s in part.stats) == 1    # one execution per item


def test_deep_wakeup_trees_travel_between_processes():
    """A frontier nests each node's wakeup tree in its parent's: thousands of levels
    must pickle (flat), and a list shared by two trees must stay one list."""
    from kmodel.engine.partition import OpStub, PartResult, WorkItem
    from kmodel.engine.strategies.wakeup import Branch, Step
    op = OpStub(1, "WRITE x", 3)
    sub: list = []
    shared = sub
    for i in range(5000):
        sub = [Branch(Step(f"t{i % 3}", None, op, 7, 4), sub)]
    item = pickle.loads(pickle.dumps(WorkItem(1, [], sub[0])))
    depth, b = 0, item.branch
    while b.children:
        depth, b = depth + 1, b.children[0]
    assert depth == 4999 and b.step.op.label == "WRITE x"
    infos = [{"wakeup": sub}, {"wakeup": shared}]
    res = pickle.loads(pickle.dumps(PartResult(1, frontier=(infos, shared))))
    (_, i2), nxt = res.frontier
    assert i2["wakeup"] is nxt


def test_stop_on_first_keeps_the_first_report_in_sequential_order():
    spec = api.CheckSpec(scenario="oom-reap", preset="rt")
    model = prepare(spec)
    pats, fac = model.patches, model.factory
    with applied(pats):
        seq = Dpor().explore(fac, Limits(stop_on_first=True))
        par = Partitioned(ShuffledBackend(fac, 3, 0), slice_s=0.0,
                          first_slice_s=0.0).explore(Limits(stop_on_first=True))
    assert seq.reports and [r.key() for r in par.reports] == [r.key() for r in seq.reports]
    assert par.reports[0].schedule == seq.reports[0].schedule
    assert par.executions == seq.executions == seq.first_report_execution


# -- the command line -----------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["check", "--jobs", "0"],
    ["matrix", "--jobs", "-1"],
    ["check", "--ray", "127.0.0.1:1"],          # nothing listens there
])
def test_bad_jobs_or_ray_address_is_one_line_and_exit_2(args):
    res = CliRunner().invoke(cli, args + ["--quiet"], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert res.output.startswith("kmodel: error: --")


def test_ctrl_c_in_a_partitioned_check_prints_what_was_found(tmp_path):
    """Ctrl-C reaches the coordinator and its workers (one process group): the workers
    end their slices, and the check prints its summary so far, exit 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmodel.cli", "check", "--patch", "v2-call-srcu",
         "--scenario", "oom-exit", "--strategy", "dpor", "--jobs", "2", "--quiet",
         "--no-shrink", "--json", str(tmp_path / "out.json"), "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    time.sleep(6)                             # past the first slice: workers run
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    assert "interrupted" in err.splitlines()[-1]
    import json
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["interrupted"] and not got["complete"] and got["executions"] > 0


# -- Ray ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed "
                                            "(pip install 'kmodel[ray]')")
    import logging
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


def test_ray_check_and_matrix_equal_the_sequential_run(ray_local, small_slices):
    spec = api.CheckSpec(scenario="memslot-vs-madvise", preset="rt", strategy="dpor")
    seq = api.run_check(spec)
    par = api.run_check(spec, ray="auto")
    assert (par.verdict, _keys(par), par.result.classes) == \
        (seq.verdict, _keys(seq), seq.result.classes)
    args = dict(designs=["upstream"], presets=["rt"], arches=["x86"],
                scenarios=["oom-reap", "mrelease"], time_per_cell=20)
    one = run_matrix(**args)
    on_ray = run_matrix(**args, ray="auto")
    assert [(r.verdict, r.scenarios, r.executions) for r in on_ray] == \
        [(r.verdict, r.scenarios, r.executions) for r in one]
