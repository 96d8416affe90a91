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

from kmodel import api
from kmodel.build import prepare, raised_in_patch
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


@pytest.mark.parametrize("change,now", [
    ({"patches": ["raw-mmu-lock"]}, "it runs clean"),       # fits, replays clean
    ({"preset": "nonrt"}, "it runs clean"),                 # fits, replays clean
    # fits, shows a different report
    ({"patches": ["v1-raw-mn-lock"]},
     "it shows sleep-in-atomic in gfn_to_pfn_cache_invalidate_start instead"),
    ({"report": {"kind": "warn", "function": "x", "title": "y"}},
     "it shows sleep-in-atomic in kvm_mmu_notifier_invalidate_range_start instead"),
])
def test_schedule_that_fits_but_no_longer_shows_its_report(record, change, now):
    msg = bad(with_(record, **change), "the replay does not show the recorded report")
    want = with_(record, **change)["report"]
    assert f"({want['kind']} in {want['function']}: {want['title']})" in msg
    assert now in msg


def test_cli_replay_that_no_longer_shows_its_report(record, tmp_path):
    """kmodel replay: one error line and exit 2, never a clean exit."""
    from click.testing import CliRunner

    from kmodel.cli import cli
    f = tmp_path / "rec.json"
    f.write_text(json.dumps(with_(record, preset="nonrt")))
    res = CliRunner().invoke(cli, ["replay", str(f)], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"kmodel: error: {f}: the replay does not show the "
                                 "recorded report (sleep-in-atomic in ")
    assert len(res.output.strip().splitlines()) == 1


def test_replay_without_the_report_check(record):
    """check_report=False (and a record that names no report) returns what the schedule
    shows, clean included."""
    res = api.replay(with_(record, preset="nonrt"), check_report=False)
    assert res.result.reports == [] and res.outcome == "done"
    rec = with_(record, preset="nonrt")
    del rec["report"]
    assert api.replay(rec).result.reports == []


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


# (these raised AttributeError/TypeError out of api.replay before it checked field types)
@pytest.mark.parametrize("change,match", [
    ({"scenario": 5}, "scenario must be"),          # was AttributeError: 'int' has no 'split'
    ({"preset": ["rt"]}, "preset must be"),         # was TypeError: unhashable type: 'list'
    ({"patches": [5]}, "patches must be"),          # was TypeError from pathlib
    ({"patches": "upstream"}, "patches must be"),   # a string is not a list of designs
    ({"config": {1: True}}, "config must be"),      # was TypeError in difflib (a non-str key)
    ({"config": [["KASAN", True]]}, "config must be"),
    ({"knobs": {"pages": 2.5}}, "knob pages"),
    ({"knobs": "pages=2"}, "knobs must be"),
    ({"max_steps": "5000"}, "max_steps must be"),
    ({"max_steps": 5000.0}, "max_steps must be"),
    ({"max_steps": True}, "max_steps must be"),
    ({"schedule": "qemu-vcpu0"}, "schedule must be"),
    ({"schedule": [["oom_reaper"]]}, "schedule must be"),
    ({"report": "sleep-in-atomic"}, "report must be"),
    ({"report": {"kind": "sleep-in-atomic"}}, "report must be"),
    ({"format": True}, "replay record"),
    ({"formt": 1}, "did you mean format?"),
])
def test_record_field_of_the_wrong_type(record, change, match):
    msg = bad(with_(record, **change), match)
    assert "replay record" in msg or "knob" in msg


# (api.replay accepted these: max_steps <= 0 replayed to a bogus livelock; a config value
# that is not a bool was taken for its truth; a step that named choice values it never
# resolved was accepted)
@pytest.mark.parametrize("case,match", [
    ("max_steps", "max_steps must be a whole number >= 1, not 0"),
    ("max_steps_short", "more than max_steps (10)"),
    ("config", "config symbol PREEMPT_RT takes true or false"),
    ("config_int", "config symbol PREEMPT_RT takes true or false"),
    ("choices", "step 0 is"),
    ("bad_choice_values", "schedule step 0"),
])
def test_record_values_that_make_no_sense(record, case, match):
    sched = list(record["schedule"])
    if case == "max_steps":
        rec = with_(record, max_steps=0)
    elif case == "max_steps_short":
        rec = with_(record, max_steps=10)
    elif case == "config":
        rec = with_(record, config={"PREEMPT_RT": "no"})
    elif case == "config_int":
        rec = with_(record, config={"PREEMPT_RT": 1})
    elif case == "choices":
        sched[0] = sched[0] + "/1!"               # the first step resolves no choice
        rec = with_(record, schedule=sched)
    else:
        sched[0] = sched[0] + "/x!"
        rec = with_(record, schedule=sched)
    msg = bad(rec, match)
    if case == "choices":
        assert "resolves no choice" in msg


def test_record_with_choice_values_replays_only_with_those_values():
    """A step that resolves a choice (a GFP_ATOMIC allocation that may fail) must name
    its values: without them, or with others, the schedule does not fit."""
    # v2-call-srcu allocates its callback with GFP_ATOMIC; its use-after-free reports
    # follow an allocation that succeeded
    res = api.run_check(api.CheckSpec(patches=["v2-call-srcu"], preset="nonrt",
                                      scenario="oom-reap", strategy="dpor",
                                      max_executions=300))
    rep = next(r for r in res.result.reports if any(s.endswith("!") for s in r.schedule))
    rec = json.loads(json.dumps(res.replay_record(rep)))
    assert api.replay(rec).result.reports
    i = next(i for i, s in enumerate(rec["schedule"]) if s.endswith("!"))
    task, values = rec["schedule"][i][:-1].rsplit("/", 1)
    for step in (task,                                          # the values left out
                 f"{task}/{values}.0!",                         # one value too many
                 f"{task}/{1 - int(values[-1])}!" if values in ("0", "1") else None):
        if step is None:
            continue
        sched = list(rec["schedule"])
        sched[i] = step
        try:
            api.replay(with_(rec, schedule=sched))
        except api.BadInput as e:
            assert "\n" not in str(e)
            continue
        raise AssertionError(f"{step!r} for {rec['schedule'][i]!r} was accepted")


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
    ({"preset": "nonrtt"}, "did you mean nonrt?"),
    ({"arch": "arm"}, "did you mean arm64?"),
    ({"strategy": "dpr"}, "did you mean dpor?"),
])
def test_unknown_names_say_did_you_mean(spec, hint):
    msg = _check_bad(**spec)
    assert hint in msg


@pytest.mark.parametrize("spec,match", [
    ({"patches": "upstream"}, "patches must be a list"),
    ({"patches": [None]}, "patches must be a list"),
    ({"preset": None}, "preset must be"),
    ({"config": {"KASAN": "y"}}, "config symbol KASAN takes true or false"),
    ({"knobs": {5: 1}}, "knobs must be"),
    ({"max_steps": 0}, "max_steps must be a whole number >= 1"),
    ({"runs": 0}, "runs must be"),
    ({"preemptions": -1}, "preemptions must be"),
    ({"max_executions": 0}, "max_executions must be"),
    ({"time_limit": 0}, "time_limit must be"),
    ({"time_limit": float("nan")}, "time_limit must be"),
    ({"depth": 0}, "depth must be"),
    ({"seed": "7"}, "seed must be"),
    ({"stop_on_first": 1}, "stop_on_first must be"),
])
def test_check_spec_of_the_wrong_type(spec, match):
    """A CheckSpec built in Python is checked as a replay record is: one line."""
    msg = _check_bad(**spec)
    assert match in msg and "\n" not in msg


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
    """A patch file that raises while the model runs it is bad input: BadInput names the
    patch file, the line and the exception (the original is its __cause__, which the
    command line's --debug prints), and the check has no verdict.  The patches are undone
    and the engine's current execution is reset, so the next check in the same process
    runs on the upstream model."""
    path = _patch(tmp_path, "raises", RAISES)
    upstream = REGISTRY["kvm_mmu_notifier_invalidate_range_start"].impl
    with pytest.raises(api.BadInput) as e:
        api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                    strategy="dpor"))
    msg = str(e.value)
    assert msg.startswith(f"{path}:7: patch raised ZeroDivisionError: bad patch")
    assert "kvm_mmu_notifier_invalidate_range_start" in msg and "\n" not in msg
    assert isinstance(e.value.__cause__, ZeroDivisionError)
    assert REGISTRY["kvm_mmu_notifier_invalidate_range_start"].impl is upstream
    from kmodel.engine import execution
    assert execution._current is None
    after = api.run_check(api.CheckSpec(preset="nonrt", scenario="oom-reap",
                                        strategy="dpor"))
    assert after.verdict == "clean" and after.result.complete


def test_patch_that_raises_at_run_time_under_every_strategy(tmp_path):
    path = _patch(tmp_path, "raises", RAISES)
    for strategy in api.STRATEGIES:
        with pytest.raises(api.BadInput, match=f"{path}:7: patch raised ZeroDivisionError"):
            api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                        strategy=strategy, runs=5))


def test_patch_that_raises_in_a_replay(record, tmp_path):
    path = _patch(tmp_path, "raises", RAISES)
    msg = bad(with_(record, patches=[path]), f"{path}:7: patch raised ZeroDivisionError")
    assert "bad patch" in msg


def test_patch_that_raises_deep_in_the_model_names_its_own_line(tmp_path):
    """The exception comes from the model (a bad argument the patch passed on): the line
    named is the patch's own, the last one of the patch file on the way down."""
    path = _patch(tmp_path, "passes_junk", """\
        from kmodel.linux.virt.kvm import kvm_main
        from kmodel.patching import Patch
        patch = Patch(name="passes-junk", title="passes junk to the model")
        _start = kvm_main.kvm_mmu_notifier_invalidate_range_start.impl


        @patch.override("kvm_mmu_notifier_invalidate_range_start")
        async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
            return await _start(None, range_)
        """)
    with pytest.raises(api.BadInput) as e:
        api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-reap",
                                    strategy="dpor"))
    assert str(e.value).startswith(f"{path}:9: patch raised ")
    assert e.value.__cause__ is not None


LATE = """\
    from kmodel.linux.virt.kvm import kvm_main
    from kmodel.patching import Patch
    patch = Patch(name="late", title="raises on the 600th range_end")
    _end = kvm_main.kvm_mmu_notifier_invalidate_range_end.impl
    calls = [0]


    @patch.override("kvm_mmu_notifier_invalidate_range_end")
    async def kvm_mmu_notifier_invalidate_range_end(sub, range_):
        calls[0] += 1
        if calls[0] == 600:
            raise ValueError("late failure")
        await _end(sub, range_)
    """


def test_patch_that_raises_in_a_worker_process(tmp_path):
    """The same from a worker process of a parallel search: its traceback comes back as
    text (the cause of the re-raised exception), and names the patch's line."""
    path = _patch(tmp_path, "late", LATE)
    with pytest.raises(api.BadInput) as e:
        api.run_check(api.CheckSpec(patches=[path], preset="nonrt", scenario="oom-exit",
                                    strategy="dpor"), jobs=2)
    assert str(e.value).startswith(f"{path}:12: patch raised ValueError: late failure")


def test_model_crash_without_a_patch_frame_is_not_bad_input(tmp_path):
    """An exception with no patch file on its traceback is the model's own: it is not
    turned into BadInput (the command line prints it as a crash, exit 2)."""
    path = _patch(tmp_path, "raises", RAISES)
    try:
        raise KeyError("model bug")
    except KeyError as e:
        assert raised_in_patch(e, [path]) is None
        assert raised_in_patch(e, ["upstream"]) is None


LOOPS = """\
    from kmodel.linux.include.rwonce import READ_ONCE
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
    model = prepare(spec)
    patches, fac = model.patches, model.factory
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
