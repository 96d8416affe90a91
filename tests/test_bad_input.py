"""Bad input: whatever a user can pass (replay records, names, patch files, limits) ends in
``api.BadInput`` with a useful line, or in a run whose result says what it is -- never in a
stray exception or a silently clean verdict."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kmodel import api, scenarios
from kmodel.engine import Limits
from kmodel.engine.strategies import RandomWalk
from kmodel.linux.kernel.core import REGISTRY
from kmodel.patching import applied

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def record():
    """The replay record of upstream rt oom-reap's sleep-in-atomic report."""
    res = api.run_check(api.CheckSpec(preset="rt", scenario="oom-reap"))
    rep = next(r for r in res.result.reports if r.kind == "sleep-in-atomic")
    rec = res.replay_record(rep)
    assert api.replay(rec).result.reports           # it does replay
    return json.loads(json.dumps(rec))


def bad(rec, match: str | None = None) -> str:
    with pytest.raises(api.BadInput) as e:
        api.replay(rec)
    msg = str(e.value)
    assert "\n" not in msg.strip()                   # one line for the user
    if match:
        assert match in msg
    return msg


def with_(rec, **fields):
    out = copy.deepcopy(rec)
    out.update(fields)
    return out


# -- replay records ---------------------------------------------------------------------

@pytest.mark.parametrize("fmt", [0, 2, "1", None, 1.5, [1]])
def test_wrong_format_version(record, fmt):
    bad(with_(record, format=fmt), "replay record")


@pytest.mark.parametrize("missing", ["patches", "preset", "arch", "scenario", "schedule"])
def test_missing_field(record, missing):
    rec = copy.deepcopy(record)
    del rec[missing]
    bad(rec, missing)


@settings(max_examples=60, **SETTINGS)
@given(st.data())
def test_truncated_schedule(record, data):
    n = len(record["schedule"])
    k = data.draw(st.integers(0, n - 1))
    bad(with_(record, schedule=record["schedule"][:k]), "schedule")


def test_schedule_one_step_too_long(record):
    bad(with_(record, schedule=record["schedule"] + [record["schedule"][-1]]), "schedule")


@settings(max_examples=40, **SETTINGS)
@given(st.data())
def test_schedule_naming_a_task_that_does_not_exist(record, data):
    sched = list(record["schedule"])
    i = data.draw(st.integers(0, len(sched) - 1))
    name = data.draw(st.sampled_from(["qemu-vcpu7", "nobody", "oom_reaper2", "kworker/9:9",
                                      "stress-ng ", "", "/1!", "a/b/c"]))
    sched[i] = name
    bad(with_(record, schedule=sched))


@pytest.mark.parametrize("change", [
    {"scenario": "mrelease"}, {"scenario": "reclaim"}, {"scenario": "oom-vs-madvise"},
    {"scenario": "oom-reap-nomemslot"}, {"arch": "arm64"},
    {"patches": ["atomic-count"]}, {"patches": ["oom-enter-unregister"]},
    {"patches": ["defer-invalidation"]}, {"patches": ["v2-call-srcu"]},
])
def test_schedule_for_another_design_or_scenario(record, change):
    bad(with_(record, **change), "schedule")


@pytest.mark.xfail(strict=True, reason="api.replay ignores the record's 'report' field: a "
                   "schedule of another design or config that happens to fit replays to a "
                   "clean (or different) result instead of BadInput")
@pytest.mark.parametrize("change", [
    {"patches": ["raw-mmu-lock"]},          # fits, replays clean
    {"preset": "nonrt"},                    # fits, replays clean
    {"patches": ["v1-raw-mn-lock"]},        # fits, shows a different report
    {"report": {"kind": "warn", "function": "x", "title": "y"}},
])
def test_schedule_that_fits_but_no_longer_shows_its_report(record, change):
    bad(with_(record, **change))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)


@settings(max_examples=150, **SETTINGS)
@given(JSON)
def test_random_json_is_bad_input(value):
    bad(value)


@settings(max_examples=150, **SETTINGS)
@given(st.dictionaries(st.sampled_from(["format", "patches", "preset", "config", "arch",
                                        "scenario", "knobs", "max_steps", "schedule"]),
                       JSON, max_size=9))
def test_random_record_like_json_is_bad_input(fields):
    bad(dict({"format": 1}, **fields) if "format" not in fields else fields)


@pytest.mark.xfail(strict=True, reason="api.replay/_prepare do not check field types: a "
                   "non-string scenario/preset/patch or a non-string config key raises "
                   "AttributeError/TypeError instead of BadInput")
@settings(max_examples=200, **SETTINGS)
@given(st.data())
def test_record_with_one_field_fuzzed(record, data):
    field = data.draw(st.sampled_from(["patches", "preset", "config", "arch", "scenario",
                                       "knobs", "max_steps", "schedule"]))
    value = data.draw(JSON)
    rec = with_(record, **{field: value})
    try:
        res = api.replay(rec)
    except api.BadInput:
        return
    # a fuzzed field that still replays must still show the recorded report
    assert {(r.kind, r.function, r.title) for r in res.result.reports} >= \
        {tuple(record["report"][k] for k in ("kind", "function", "title"))}


@pytest.mark.xfail(strict=True, reason="api.replay/_prepare do not check field types")
@pytest.mark.parametrize("change", [
    {"scenario": 5},                        # AttributeError: 'int' has no 'split'
    {"preset": ["rt"]},                     # TypeError: unhashable type: 'list'
    {"patches": [5]},                       # TypeError from pathlib
    {"config": {1: True}},                  # TypeError in difflib (a non-str key)
])
def test_record_field_of_the_wrong_type(record, change):
    bad(with_(record, **change))


@pytest.mark.xfail(strict=True, reason="api.replay accepts values it should refuse: "
                   "max_steps <= 0 replays to a bogus livelock; a config value that is not a "
                   "bool is taken for its truth; a step that names choice values it never "
                   "resolves is accepted")
@pytest.mark.parametrize("case", ["max_steps", "config", "choices"])
def test_record_values_that_make_no_sense(record, case):
    if case == "max_steps":
        rec = with_(record, max_steps=0)
    elif case == "config":
        rec = with_(record, config={"PREEMPT_RT": "no"})
    else:
        sched = list(record["schedule"])
        sched[0] = sched[0] + "/1!"               # the first step resolves no choice
        rec = with_(record, schedule=sched)
    bad(rec)


# -- names --------------------------------------------------------------------------------

def _check_bad(**spec) -> str:
    with pytest.raises(api.BadInput) as e:
        api.run_check(api.CheckSpec(**spec))
    return str(e.value)


@pytest.mark.parametrize("spec,hint", [
    ({"patches": ["upstrem"]}, "did you mean upstream?"),
    ({"patches": ["atomic_count"]}, "did you mean atomic-count?"),
    ({"scenario": "oom-reep"}, "did you mean oom-reap?"),
    ({"scenario": "oom,vpcu"}, "did you mean vcpu?"),
    ({"config": {"KASN": True}}, "did you mean KASAN?"),
    ({"config": {"PREEMPT_RT_FULL": True}}, "did you mean PREEMPT_RT?"),
    pytest.param({"preset": "nonrtt"}, "did you mean nonrt?", marks=pytest.mark.xfail(
        strict=True, reason="build_config: no 'did you mean' for an unknown preset")),
    pytest.param({"arch": "arm"}, "did you mean arm64?", marks=pytest.mark.xfail(
        strict=True, reason="_prepare: no 'did you mean' for an unknown arch")),
    pytest.param({"strategy": "dpr"}, "did you mean dpor?", marks=pytest.mark.xfail(
        strict=True, reason="_prepare: no 'did you mean' for an unknown strategy")),
])
def test_unknown_names_say_did_you_mean(spec, hint):
    msg = _check_bad(**spec)
    assert hint in msg


@pytest.mark.parametrize("spec", [
    {"patches": ["no-such-design"]}, {"scenario": "zzz"}, {"preset": "zzz"},
    {"config": {"ZZZ": True}}, {"arch": "zzz"}, {"strategy": "zzz"}, {"scenario": ""},
    {"scenario": ",,"},
])
def test_unknown_names_far_from_anything(spec):
    msg = _check_bad(**spec)
    assert "did you mean" not in msg
    assert "unknown" in msg


# -- patch files --------------------------------------------------------------------------

def _patch(tmp_path, name, body) -> str:
    p = tmp_path / f"{name}.py"
    p.write_text(textwrap.dedent(body))
    return str(p)


def test_patch_that_raises_at_import_names_file_and_line(tmp_path):
    path = _patch(tmp_path, "broken", """\
        from kmodel.patching import Patch
        patch = Patch(name="broken", title="raises at import")

        raise RuntimeError("boom")
        """)
    msg = _check_bad(patches=[path])
    assert f"{path}:4:" in msg and "RuntimeError: boom" in msg


def test_patch_with_a_syntax_error_names_file(tmp_path):
    path = _patch(tmp_path, "syntax", """\
        from kmodel.patching import Patch
        patch = Patch(name="syntax", title="does not parse"
        """)
    msg = _check_bad(patches=[path])
    assert path in msg and "SyntaxError" in msg


def test_patch_without_a_patch_object(tmp_path):
    path = _patch(tmp_path, "empty", "x = 1\n")
    assert path in _check_bad(patches=[path])


def test_patch_overriding_a_missing_function_names_file_and_line(tmp_path):
    path = _patch(tmp_path, "nosuch", """\
        from kmodel.patching import Patch
        patch = Patch(name="nosuch", title="a typo")


        @patch.override("kvm_mmu_notifier_invalidate_range_strat")
        async def f(sub, range_):
            return 0
        """)
    msg = _check_bad(patches=[path])
    assert f"{path}:5:" in msg
    assert "did you mean kvm_mmu_notifier_invalidate_range_start?" in msg


RAISES = """\
    from kmodel.patching import Patch
    patch = Patch(name="raises", title="raises at run time")


    @patch.override("kvm_mmu_notifier_invalidate_range_start")
    async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
        raise ZeroDivisionError("bad patch")
    """


def test_patch_that_raises_at_run_time(tmp_path):
    """What happens: the patch's exception propagates out of run_check unchanged, with the
    patch file's line in its traceback.  It is not turned into BadInput or into a
    report (KINDS has 'model-error', unused), and the check has no verdict at all.  The
    patches are undone and the engine's current execution is reset, so the next check in
    the same process runs on the upstream model."""
    path = _patch(tmp_path, "raises", RAISES)
    upstream = REGISTRY["kvm_mmu_notifier_invalidate_range_start"].impl
    with pytest.raises(ZeroDivisionError) as e:
        api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                    strategy="dpor"))
    assert not isinstance(e.value, api.BadInput)
    assert any(str(tb.path) == path for tb in e.traceback)
    assert REGISTRY["kvm_mmu_notifier_invalidate_range_start"].impl is upstream
    from kmodel.engine import execution
    assert execution._current is None
    after = api.run_check(api.CheckSpec(preset="nonrt", scenario="oom-reap",
                                        strategy="dpor"))
    assert after.verdict == "clean" and after.result.complete


def test_patch_that_raises_at_run_time_under_every_strategy(tmp_path):
    path = _patch(tmp_path, "raises", RAISES)
    for strategy in api.STRATEGIES:
        with pytest.raises(ZeroDivisionError):
            api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                        strategy=strategy, runs=5))


LOOPS = """\
    from kmodel.linux.kernel.core import READ_ONCE
    from kmodel.linux.virt.kvm import kvm_main
    from kmodel.patching import Patch
    patch = Patch(name="spins", title="never returns")


    @patch.override("kvm_mmu_notifier_invalidate_range_start")
    async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
        kvm = kvm_main.mmu_notifier_to_kvm(sub)
        while True:
            await READ_ONCE(kvm, "mn_active_invalidate_count")
    """


def test_patch_that_never_returns_ends_each_execution_with_livelock(tmp_path):
    path = _patch(tmp_path, "spins", LOOPS)
    spec = api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                         strategy="random", runs=8, max_steps=150)
    res = api.run_check(spec)
    assert [r.kind for r in res.result.reports] == ["livelock"]
    assert res.verdict == "reports"
    # every execution, not just one: run the same walks and look at each one's end
    config, sdef, patches = api._prepare(spec)
    fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    made = []

    def factory():
        made.append(fac())
        return made[-1]

    with applied(patches):
        RandomWalk(8, 0).explore(factory, Limits(max_steps=150))
    assert len(made) == 8
    for program in made:
        ex = program.ex
        assert ex.outcome == "budget" and ex.nsteps == 150
        assert [r.kind for r in ex.reports][-1:] == ["livelock"]
    # and the livelock replays
    rep = res.result.reports[0]
    again = api.replay(res.replay_record(rep))
    assert again.outcome == "budget"
    assert [r.key() for r in again.result.reports] == [rep.key()]


def test_patch_that_never_returns_under_dpor(tmp_path):
    path = _patch(tmp_path, "spins", LOOPS)
    res = api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                      strategy="dpor", max_steps=120, max_executions=50))
    assert {r.kind for r in res.result.reports} == {"livelock"}


# -- limits ----------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["dpor", "default", "bounded", "naive"])
def test_max_executions_ends_the_run_incomplete(strategy):
    res = api.run_check(api.CheckSpec(preset="nonrt", scenario="oom-vs-madvise",
                                      strategy=strategy, max_executions=5))
    assert res.result.complete is False
    assert res.verdict == "clean-so-far"
    assert 5 <= res.result.executions <= 5 * 4   # default/bounded: per phase


@pytest.mark.parametrize("strategy", ["dpor", "default", "naive"])
def test_time_limit_ends_the_run_incomplete(strategy):
    res = api.run_check(api.CheckSpec(preset="nonrt", scenario="oom-exit",
                                      strategy=strategy, time_limit=0.5))
    assert res.result.complete is False
    assert res.verdict == "clean-so-far"
    assert res.result.elapsed_s < 5


def test_random_is_never_complete():
    res = api.run_check(api.CheckSpec(preset="nonrt", scenario="oom-reap-nomemslot",
                                      strategy="random", runs=3))
    assert res.result.complete is False and res.result.executions == 3
