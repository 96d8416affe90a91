"""`kmodel explain NAME --diff`: a design as a unified diff against the upstream model."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodel.cli import cli
from kmodel.patches import AIDS, ORDER
from kmodel.patching import load
from kmodel.report.diff import obj_name, value_name

EXAMPLE = str(Path(__file__).resolve().parent.parent / "examples" / "my_design.py")


def _diff(name: str) -> str:
    res = CliRunner().invoke(cli, ["explain", name, "--diff"])
    assert res.exit_code == 0, res.output
    return res.output


def _hunks(text: str) -> dict[str, list[str]]:
    """Function name (from the hunk header) -> the hunk's lines, hunks of one function
    joined."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("@@"):
            cur = out.setdefault(line.split(" @@ ", 1)[1].split(" ")[0], [])
        elif line.startswith(("--- ", "+++ ")):
            cur = None
        elif cur is not None:
            cur.append(line)
    return out


@pytest.mark.parametrize("name", [n for n in [*ORDER, *AIDS] if n != "upstream"])
def test_every_design_diff_names_each_function_it_changes(name):
    p = load(name)
    text = _diff(name)
    hunks = _hunks(text)
    for fn in p.overrides:
        assert fn in hunks, f"{fn} has no hunk"
        assert any(x.startswith(("-", "+")) for x in hunks[fn])
    for fn in p.new:
        assert fn in hunks and all(x.startswith("+") for x in hunks[fn])
        assert any(line.startswith("@@ -0,0 ") and f" {fn} (" in line and ", new)" in line
                   for line in text.splitlines())
    for obj, attr, value in p.fields:
        assert f"+{obj_name(obj)}.{attr} = {value_name(value)}" in text.splitlines()
    # every file block is a --- / +++ pair
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("--- "):
            assert lines[i + 1].startswith("+++ ")


def test_v1_diff_shows_spin_lock_becoming_raw_spin_lock():
    start = _hunks(_diff("v1-raw-mn-lock"))["kvm_mmu_notifier_invalidate_range_start"]
    assert "-    await spin_lock(kvm.mn_invalidate_lock)" in start
    assert "+    await raw_spin_lock(kvm.mn_invalidate_lock)" in start
    assert "-    await spin_unlock(kvm.mn_invalidate_lock)" in start
    assert "+    await raw_spin_unlock(kvm.mn_invalidate_lock)" in start
    # what did not change is context, spelt as upstream spells it (the design writes
    # kvm_main.mmu_notifier_to_kvm), and docstrings and decorators are left out
    assert "     kvm = mmu_notifier_to_kvm(sub)" in start
    assert not any("@kfunc" in x or "@patch" in x or '"""' in x for x in start)


def test_added_functions_and_set_fields_are_shown():
    text = _diff("oom-enter-unregister")
    hunks = _hunks(text)
    assert "kvm_mmu_notifier_detach" in hunks          # a plain @kfunc in the design
    assert "-kvm_mmu_notifier_ops.oom_enter = None" in text.splitlines()
    assert "+kvm_mmu_notifier_ops.oom_enter = kvm_mmu_notifier_oom_enter" in \
        text.splitlines()
    helpers = _hunks(_diff("defer-invalidation"))
    assert "_wq" in helpers and "kvm_mmu_notifier_deferred_work" in helpers


def test_a_patch_file_diff():
    text = _diff(EXAMPLE)
    assert "+++ b/examples/my_design.py" in text.splitlines()
    start = _hunks(text)["kvm_mmu_notifier_invalidate_range_start"]
    assert "+    if not mn.mmu_notifier_range_blockable(range_):" in start
    assert any(x.startswith("+        return -mn.EAGAIN") for x in start)
    assert "     await spin_lock(kvm.mn_invalidate_lock)" in start     # unchanged


def test_upstream_changes_nothing_and_a_bad_name_is_bad_input():
    assert _diff("upstream") == "kmodel: upstream changes nothing\n"
    res = CliRunner().invoke(cli, ["explain", "v1-raw-mn-lok", "--diff"])
    assert res.exit_code == 2
    assert "did you mean v1-raw-mn-lock?" in res.output
