"""Scaling out: the partitioned search and the parallel matrix give what the sequential
ones give (kmodel.parallel, kmodel.engine.parallel)."""

from __future__ import annotations

import itertools
import pickle
import random

import pytest

from kmodel import api, parallel, scenarios
from kmodel.engine import Limits
from kmodel.engine.parallel import Partitioned, _ChunkCollector, run_item
from kmodel.engine.strategies import Dpor
from kmodel.matrix import run_matrix
from kmodel.patching import applied


@pytest.fixture
def small_slices(monkeypatch):
    """Work items of a few executions each, and none run in this process: every check
    below is really split over the workers, however small."""
    monkeypatch.setattr(parallel, "SLICE_S", 0.01)
    monkeypatch.setattr(parallel, "FIRST_SLICE_S", 0.0)


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


def test_matrix_rows_do_not_depend_on_jobs():
    args = dict(designs=["upstream", "v1-raw-mn-lock"], presets=["rt"], arches=["x86"],
                scenarios=["oom-reap", "memslot-vs-madvise"], time_per_cell=20)
    one = run_matrix(**args, jobs=1)
    two = run_matrix(**args, jobs=2)

    def comparable(rows):
        out = []
        for row in rows:
            row = dict(row)
            row.pop("elapsed_s")
            row["checks"] = [_without_times(c.to_dict()) for c in row["checks"]]
            out.append(row)
        return out

    assert comparable(two) == comparable(one)
    assert len(two) == 2 and all(r["scenarios"] for r in two)


# -- the coordinator alone, against adversarial scheduling ------------------------------

class ShuffledBackend:
    """Runs work items in this process, finishing them in a random order (as workers of
    uneven speed would), each through pickle (as between processes)."""

    def __init__(self, factory, slots: int, seed: int):
        self.factory = factory
        self.slots = slots
        self.rng = random.Random(seed)
        self.items: dict = {}
        self.results: dict = {}
        self.ids = itertools.count()

    def submit(self, item):
        h = next(self.ids)
        self.items[h] = pickle.loads(pickle.dumps(item))
        return h

    def wait(self, handles, timeout):
        h = self.rng.choice(handles)
        self.results[h] = pickle.loads(pickle.dumps(run_item(self.factory,
                                                             self.items.pop(h))))
        return [h]

    def result(self, h):
        return self.results.pop(h)

    def stop(self, handles):
        pass


@pytest.mark.parametrize("patches,preset,scenario,bound,seed", [
    (["upstream"], "rt", "oom-reap", None, 1),
    (["atomic-count"], "rt", "memslot-vs-madvise", None, 2),
    (["upstream"], "nonrt", "memslot-vs-madvise", 1, 3),
])
def test_coordinator_explores_every_class_in_any_completion_order(patches, preset,
                                                                   scenario, bound, seed):
    spec = api.CheckSpec(patches=patches, preset=preset, scenario=scenario)
    config, sdef, pats = api._prepare(spec)
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    with applied(pats):
        col = _ChunkCollector("dpor", Limits())
        seq = Dpor(preemption_bound=bound).explore(fac, Limits(), col)
        part = Partitioned(ShuffledBackend(fac, 3, seed), bound, slice_s=0.0,
                           first_slice_s=0.0)
        par = part.explore(Limits())
    fps = set().union(*(c[1].fingerprints for c in part._chunks))
    assert fps == col.fps                       # the very same classes
    assert par.classes == seq.classes
    assert {r.key() for r in par.reports} == {r.key() for r in seq.reports}
    assert par.complete == seq.complete
    assert len(part.stats) > 1 and max(s[2] for s in part.stats) == 1  # one per item


def test_stop_on_first_keeps_the_first_report_in_sequential_order():
    spec = api.CheckSpec(scenario="oom-reap", preset="rt")
    config, sdef, pats = api._prepare(spec)
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    with applied(pats):
        seq = Dpor().explore(fac, Limits(stop_on_first=True))
        par = Partitioned(ShuffledBackend(fac, 3, 0), None, slice_s=0.0,
                          first_slice_s=0.0).explore(Limits(stop_on_first=True))
    assert seq.reports and [r.key() for r in par.reports] == [r.key() for r in seq.reports]
    assert par.reports[0].schedule == seq.reports[0].schedule
    assert par.executions == seq.executions == seq.first_report_execution


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
    assert [(r["verdict"], r["scenarios"], r["executions"]) for r in on_ray] == \
        [(r["verdict"], r["scenarios"], r["executions"]) for r in one]
