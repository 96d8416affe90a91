"""The results cache: a check whose inputs have not changed answers from it, and editing
one patch file re-runs only the checks that apply it (kmodel.cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodel import api, cache
from kmodel import strategies as strategies_mod
from kmodel.cli import cli
from kmodel.matrix import run_matrix

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "my_design.py"
SCENARIOS = ["oom-reap", "reclaim", "oom-vs-madvise"]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("KMODEL_CACHE_DIR", str(d))
    monkeypatch.delenv("KMODEL_NO_CACHE")
    return d


@pytest.fixture
def explorations(monkeypatch):
    """Every exploration run_check starts, as the designs it applied."""
    seen: list = []
    real = strategies_mod.explore

    def counting(spec, factory, engines=strategies_mod.Sequential):
        seen.append(tuple(spec.patches))
        return real(spec, factory, engines)
    monkeypatch.setattr(api, "explore", counting)
    return seen


def _rows(rows):
    return [({k: v for k, v in vars(r).items() if k != "checks"},
             [cr.to_dict() for cr in r.checks]) for r in rows]


def _design(tmp_path, name):
    path = tmp_path / f"{name}.py"
    path.write_text(EXAMPLE.read_text().replace('name="my-eagain"', f'name="{name}"'))
    return str(path)


def test_a_second_matrix_answers_from_the_cache_and_an_edit_reruns_only_its_rows(
        tmp_path, cache_dir, explorations):
    a, b = _design(tmp_path, "design-a"), _design(tmp_path, "design-b")
    args = dict(designs=["upstream", a, b], presets=["nonrt"], arches=["x86"],
                scenarios=SCENARIOS, cache=True)
    first = run_matrix(**args)
    assert len(explorations) == 9                        # 3 designs x 3 scenarios
    assert not any(cr.cached for r in first for cr in r.checks)
    assert len(list(cache_dir.rglob("*.pickle"))) == 9

    explorations.clear()
    second = run_matrix(**args)
    assert explorations == []                           # nothing explored
    assert all(cr.cached for r in second for cr in r.checks)
    assert _rows(second) == _rows(first)                # times included

    Path(b).write_text(Path(b).read_text() + "# edited\n")
    third = run_matrix(**args)
    assert explorations == [(b,)] * 3                   # only design-b's checks ran
    assert [cr.cached for r in third for cr in r.checks] == [True] * 6 + [False] * 3
    assert _rows(third)[:2] == _rows(first)[:2]

    explorations.clear()
    run_matrix(**{**args, "cache": False})              # cache=False runs everything
    assert len(explorations) == 9


def test_parallel_matrix_answers_from_the_cache_without_workers(cache_dir, monkeypatch):
    args = dict(designs=["upstream"], presets=["nonrt"], arches=["x86"],
                scenarios=SCENARIOS[:2], cache=True)
    first = run_matrix(**args)
    from kmodel import matrix
    monkeypatch.setattr(matrix, "run_checks", lambda *a, **k: pytest.fail("ran checks"))
    again = run_matrix(**args, jobs=2)
    assert _rows(again) == _rows(first)


def test_editing_a_design_another_builds_on_changes_its_key():
    """defer-invalidation imports v1-raw-mn-lock: both files are in its key."""
    files = {p.name for p in cache.patch_files(["defer-invalidation"])}
    assert files == {"defer_invalidation.py", "v1_raw_mn_lock.py"}
    assert {p.name for p in cache.patch_files(["upstream"])} == {"upstream.py"}
    spec = api.CheckSpec(patches=["upstream"])
    k = cache.key(spec, ["upstream"], False)
    assert k == cache.key(api.CheckSpec(patches=["upstream"]), ["upstream"], False)
    assert k != cache.key(api.CheckSpec(patches=["upstream"], seed=1), ["upstream"], False)
    assert k != cache.key(spec, ["upstream"], True)


def test_a_check_the_time_cap_stopped_is_not_kept(cache_dir, explorations):
    spec = api.CheckSpec(patches=["upstream"], preset="nonrt", scenario="oom-exit",
                         strategy="dpor", time_limit=0.2)
    cr = api.run_check(spec, cache=True)
    assert not cr.result.complete and not cr.result.reports
    assert list(cache_dir.rglob("*.pickle")) == []
    api.run_check(spec, cache=True)
    assert len(explorations) == 2                        # ran again
    # a first report with stop_on_first does not depend on speed: kept
    first = api.CheckSpec(patches=["upstream"], preset="rt", scenario="oom-reap",
                          time_limit=30.0, stop_on_first=True)
    api.run_check(first, cache=True)
    assert api.run_check(first, cache=True).cached


def test_check_command_answers_from_the_cache_and_no_cache_runs(cache_dir, tmp_path,
                                                                explorations):
    args = ["check", "-s", "oom-reap", "--preset", "rt", "--jobs", "1", "-q",
            "--out", str(tmp_path / "out"), "--json", str(tmp_path / "r.json")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1 and "cache" not in first.output
    one = json.loads((tmp_path / "r.json").read_text())
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert "the check answered from the cache" in again.output
    assert json.loads((tmp_path / "r.json").read_text()) == one
    assert len(explorations) == 1
    forced = CliRunner().invoke(cli, args + ["--no-cache"])
    assert forced.exit_code == 1 and "from the cache" not in forced.output
    assert len(explorations) == 2
