"""The command line, the reports and the matrix, as a kernel developer meets them.

Small scenarios only (oom-reap-nomemslot, oom-reap, memslot-vs-madvise): the whole file
runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from kmodel import api
from kmodel.cli import cli
from kmodel.patches import ORDER
from kmodel.report import lock_holds
from kmodel.report.formats import json as json_report
from kmodel.report.text import trace_table
from kmodel.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
SPLAT = "BUG: sleeping function called from invalid context"


def run(*args, cwd=None):
    runner = CliRunner()
    if cwd is not None:
        old = os.getcwd()
        os.chdir(cwd)
    try:
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        if cwd is not None:
            os.chdir(old)


def stdout(result) -> str:
    return getattr(result, "stdout", result.output)


@pytest.fixture(scope="module")
def rt_check(tmp_path_factory):
    """kmodel check --scenario oom-reap --preset rt, with every output file."""
    d = tmp_path_factory.mktemp("rt")
    res = run("check", "--scenario", "oom-reap", "--preset", "rt", "--out", d / "out",
              "--json", d / "c.json", "--junit", d / "c.xml", "--html", d / "t.html")
    return res, d


# -- check ------------------------------------------------------------------------------

def test_check_rt_reports_the_splat_of_the_thread(rt_check):
    res, _ = rt_check
    assert res.exit_code == 1, res.output
    out = res.output
    assert SPLAT in out
    assert "kvm_mmu_notifier_invalidate_range_start" in out
    assert "__oom_reap_task_mm" in out
    # the interleaving table, the replay command, the summary as the last line
    assert re.search(r"^  step  task +function +operation$", out, re.MULTILINE)
    assert re.search(r"^>\s+\d+  oom_reaper ", out, re.MULTILINE)
    assert re.search(r"^Replay: kmodel replay \S+\.json$", out, re.MULTILINE)
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("kmodel: upstream rt x86 oom-reap: reports")
    for word in ("executions", "classes", "complete: yes"):
        assert word in last
    assert "victim pages freed/victim pages" in out
    assert "longest non-preemptible section" in out


def test_check_nonrt_is_clean(tmp_path):
    res = run("check", "--scenario", "oom-reap", "--preset", "nonrt", "--out", tmp_path)
    assert res.exit_code == 0, res.output
    assert SPLAT not in res.output
    assert res.output.rstrip().splitlines()[-1].startswith(
        "kmodel: upstream nonrt x86 oom-reap: clean;")
    assert list(tmp_path.iterdir()) == []          # nothing to replay


def test_quiet_prints_only_the_summary_line(tmp_path):
    res = run("check", "--scenario", "oom-reap-nomemslot", "--quiet", "--out", tmp_path)
    assert res.exit_code == 1
    lines = stdout(res).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kmodel: upstream rt x86 ")


def test_table_is_truncated_with_a_note_and_full_trace_shows_all(tmp_path):
    res = run("check", "--scenario", "oom-reap", "--out", tmp_path, "--no-shrink")
    assert "earlier steps not shown; --full-trace shows them" in res.output
    full = run("check", "--scenario", "oom-reap", "--out", tmp_path, "--full-trace",
               "--no-shrink")
    m = re.search(r"Interleaving: all (\d+) steps", full.output)
    assert m
    rows = re.findall(r"^[> ]\s+\d+  \S", full.output, re.MULTILINE)
    assert len(rows) == int(m.group(1))


def test_unknown_design_exits_2_with_a_hint():
    res = run("check", "--patch", "upstraem")
    assert res.exit_code == 2
    assert "did you mean upstream?" in res.output
    assert "Traceback" not in res.output
    assert res.output.startswith("kmodel: error: ")


def test_bad_input_is_one_line_and_exit_2():
    for args in (["check", "--scenario", "oom-rep"], ["check", "--config", "PREEMPT=y"],
                 ["check", "--config", "PREEMPT_RT"], ["check", "--preset", "rtt"],
                 ["check", "--arch", "riscv"], ["matrix", "--designs", "nope"],
                 ["explain", "nope"], ["check", "--knob", "novalue"]):
        res = run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output


def test_patch_file_that_raises_at_import_names_file_and_line(tmp_path):
    bad = tmp_path / "bad_design.py"
    bad.write_text("from kmodel.patching import Patch\n"
                   "patch = Patch(name='bad', title='bad')\n"
                   "raise ValueError('typo in my design')\n")
    res = run("check", "--patch", bad)
    assert res.exit_code == 2
    assert f"{bad}:3" in res.output
    assert "ValueError: typo in my design" in res.output
    assert "Traceback" not in res.output


def test_patch_file_that_raises_at_run_time_is_one_line(tmp_path):
    bad = tmp_path / "runtime_bug.py"
    bad.write_text(
        "from kmodel.patching import Patch\n"
        "patch = Patch(name='runtime-bug', title='raises')\n"
        "@patch.override('kvm_mmu_notifier_invalidate_range_start')\n"
        "async def kvm_mmu_notifier_invalidate_range_start(sub, range_):\n"
        "    raise RuntimeError('oops in my design')\n")
    res = run("check", "--patch", bad, "--scenario", "oom-reap-nomemslot",
              "--out", tmp_path)
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    errs = [ln for ln in res.output.splitlines() if ln.startswith("kmodel: error:")]
    assert len(errs) == 1
    assert "RuntimeError: oops in my design" in errs[0]
    assert "runtime_bug.py:5" in errs[0]
    dbg = run("check", "--patch", bad, "--scenario", "oom-reap-nomemslot", "--out",
              tmp_path, "--debug")
    assert dbg.exit_code == 2 and "Traceback" in dbg.output


def test_mmu_notifier_n_is_a_build_check(tmp_path):
    res = run("check", "--patch", "v2-call-srcu", "--config", "MMU_NOTIFIER=n",
              "--out", tmp_path)
    assert res.exit_code == 1
    assert "implicit declaration of function 'mmu_notifier_oom_enter'" in res.output
    assert "build-error" in res.output.splitlines()[-1]
    ok = run("check", "--config", "MMU_NOTIFIER=n", "--out", tmp_path)
    assert ok.exit_code == 0 and "builds" in ok.output


def test_example_patch_file_runs(tmp_path):
    res = run("check", "--patch", ROOT / "examples" / "my_design.py", "--scenario",
              "oom-reap", "--out", tmp_path)
    assert res.exit_code in (0, 1), res.output
    assert "my-eagain" in res.output
    exp = run("explain", ROOT / "examples" / "my_design.py")
    assert exp.exit_code == 0
    assert "kvm_mmu_notifier_invalidate_range_start" in exp.output


# -- replay -----------------------------------------------------------------------------

def test_replay_prints_byte_identical_report(rt_check):
    res, d = rt_check
    out = stdout(res)
    m = re.search(r"^Replay: kmodel replay (\S+)$", out, re.MULTILINE)
    path = m.group(1)
    block = out[:m.end()] + "\n"                  # splat + table + replay line
    rep = run("replay", path)
    assert rep.exit_code == 1, rep.output
    assert stdout(rep).startswith(block)
    record = json.loads(Path(path).read_text())
    assert set(json_report.REPLAY_KEYS) <= set(record)
    text = json.loads((d / "c.json").read_text())["reports"][0]["text"]
    assert text + "\n" in stdout(rep)


def test_replay_of_a_json_report_object(rt_check, tmp_path):
    _, d = rt_check
    report = json.loads((d / "c.json").read_text())["reports"][0]
    f = tmp_path / "report.json"
    f.write_text(json.dumps(report))
    res = run("replay", f)
    assert res.exit_code == 1 and report["text"] in res.output


@pytest.mark.parametrize("content", [
    '{"format": 1, "patches": ["upstream"',                     # not JSON
    '[1, 2, 3]',                                                # not a record
    '{"format": 99}',                                           # another format
    '{"format": 1, "patches": ["upstream"], "preset": "rt", "arch": "x86", '
    '"scenario": "oom-reap", "schedule": ["nobody"]}',          # does not fit
    '{"format": 1, "patches": ["upstream"], "preset": "rt", "arch": "x86", '
    '"scenario": "oom-reap"}',                                   # missing a field
])
def test_corrupt_replay_file_exits_2(tmp_path, content):
    f = tmp_path / "bad.json"
    f.write_text(content)
    res = run("replay", f)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert res.output.startswith("kmodel: error: ")


def test_replay_of_a_missing_file_exits_2(tmp_path):
    res = run("replay", tmp_path / "nope.json")
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_api_replay_returns_the_trace(rt_check):
    _, d = rt_check
    rep = json.loads((d / "c.json").read_text())["reports"][0]
    cr = api.replay(rep["replay"])
    assert len(cr.trace) == len(rep["schedule"])
    # (task, function, op label, what the step did to a lock or None)
    assert all(len(step) == 4 for step in cr.trace)
    assert any(step[3] is not None for step in cr.trace)
    assert cr.trace[rep["step"]][0] == rep["task"]
    assert cr.outcome in ("done", "deadlock", "budget")


# -- outputs ----------------------------------------------------------------------------

def test_json_output_has_the_documented_keys(rt_check):
    _, d = rt_check
    obj = json.loads((d / "c.json").read_text())
    for k in ("patches", "config", "arch", "scenario", "strategy", "executions",
              "complete", "elapsed_s", "reports"):
        assert k in obj
    assert set(obj) == set(json_report.CHECK_KEYS)
    assert obj["patches"] == ["upstream"] and obj["config"]["PREEMPT_RT"] is True
    assert obj["reports"]
    for r in obj["reports"]:
        for k in ("kind", "title", "task", "function", "trace", "text", "schedule",
                  "replay"):
            assert k in r
        assert set(r) == set(json_report.REPORT_KEYS)


def test_readme_documents_the_json_keys():
    readme = (ROOT / "README.md").read_text()
    for k in json_report.CHECK_KEYS + json_report.REPORT_KEYS + json_report.REPLAY_KEYS:
        assert f"`{k}`" in readme, k


def test_junit_output_is_xml_with_one_testcase_per_check(rt_check):
    _, d = rt_check
    root = ET.parse(d / "c.xml").getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 1
    assert cases[0].get("name") == "rt/x86/oom-reap"
    fail = cases[0].find("failure")
    assert fail is not None and SPLAT in fail.text


def test_matrix_cli_writes_markdown_json_and_junit(tmp_path):
    res = run("matrix", "--designs", "upstream,v2-call-srcu", "--arches", "x86",
              "--scenarios", "oom-reap-nomemslot", "--time", "20", "--quiet",
              "--markdown", tmp_path / "m.md", "--json", tmp_path / "m.json",
              "--junit", tmp_path / "m.xml")
    assert res.exit_code == 0, res.output
    assert "MMU_NOTIFIER=n build" in res.output
    md = (tmp_path / "m.md").read_text()
    assert md.startswith("| design | preset | arch | verdict |")
    assert "| `upstream` | rt | x86 | **reports** |" in md
    assert "| `upstream` | nonrt | x86 | **clean** |" in md
    assert re.search(r"\| `v2-call-srcu` \| rt \| build-error \| .*mmu_notifier_oom_enter", md)
    checks = json.loads((tmp_path / "m.json").read_text())
    # 2 designs x 2 presets x 1 arch x 1 scenario, and v2-call-srcu's build error (rt)
    assert len(checks) == 5
    assert sum(c["verdict"] == "build-error" for c in checks) == 1
    cases = ET.parse(tmp_path / "m.xml").getroot().findall(".//testcase")
    assert len(cases) == len(checks)


def test_run_matrix_rows():
    from kmodel import matrix
    rows = matrix.run_matrix(designs=["upstream"], arches=["x86"],
                             scenarios=["oom-reap-nomemslot", "memslot-vs-madvise"])
    assert [(r.preset, r.verdict) for r in rows] == [("rt", "reports"),
                                                      ("nonrt", "clean")]
    rt = rows[0]
    assert rt.first_report.kind == "sleep-in-atomic"
    assert rt.first_report.function == "kvm_mmu_notifier_invalidate_range_start"
    assert rt.first_report.scenario == "oom-reap-nomemslot"
    assert rt.scenarios == {"oom-reap-nomemslot": "reports",
                            "memslot-vs-madvise": "clean"}
    assert rt.executions == sum(c.result.executions for c in rt.checks)
    build = matrix.run_build_matrix(designs=["upstream", "v2-call-srcu"], presets=["rt"])
    assert [(b.design, b.verdict) for b in build] == [("upstream", "builds"),
                                                       ("v2-call-srcu", "build-error")]


def test_time_cap_marks_cells_not_complete():
    from kmodel import matrix
    rows = matrix.run_matrix(designs=["upstream"], presets=["nonrt"], arches=["x86"],
                             scenarios=["memslot-vs-madvise"], time_per_cell=0.01)
    assert rows[0].verdict in ("clean-so-far", "reports")
    assert rows[0].complete is False or rows[0].checks[0].result.complete


def test_progress_callback_counts_executions():
    seen = []
    cr = api.run_check(api.CheckSpec(scenario="memslot-vs-madvise", preset="nonrt"),
                       progress=lambda p: seen.append((p.executions, p.reports)))
    assert seen and seen[-1][0] >= cr.result.executions - 1
    assert [e for e, _ in seen] == sorted(e for e, _ in seen)


# -- list, explain, help ----------------------------------------------------------------

def test_list_names_every_design_and_scenario():
    res = run("list")
    assert res.exit_code == 0
    for name in ORDER:
        assert re.search(rf"^  {re.escape(name)} ", res.output, re.MULTILINE), name
    for name in SCENARIOS:
        assert re.search(rf"^  {re.escape(name)} ", res.output, re.MULTILINE), name
    for word in ("PREEMPT_RT", "MMU_NOTIFIER", "rt", "nonrt", "dpor", "bounded"):
        assert word in res.output


def test_explain_names_what_a_design_changes():
    res = run("explain", "v2-call-srcu")
    assert res.exit_code == 0
    out = res.output
    assert "shaikh.kamal" in out and "2026-04-29" in out
    assert "__oom_reap_task_mm" in out and "kvm_destroy_vm" in out
    assert "mmu_notifier_oom_enter" in out and "no stub" in out


@pytest.mark.parametrize("cmd", ["list", "check", "replay", "explain", "matrix"])
def test_every_command_has_help_with_an_example(cmd):
    res = run(cmd, "--help")
    assert res.exit_code == 0
    assert "Example" in res.output and f"kmodel {cmd}" in res.output


# -- Ctrl-C -----------------------------------------------------------------------------

def test_ctrl_c_prints_what_was_found_and_exits_130(tmp_path):
    """A real SIGINT in the middle of a long exploration."""
    marker = tmp_path / "exploring"
    spy = tmp_path / "spy.py"            # tells the test when the exploration is under way
    spy.write_text(
        "import os, pathlib\n"
        "from kmodel.patching import Patch\n"
        "from kmodel.linux.virt.kvm import kvm_main\n"
        "patch = Patch(name='spy', title='upstream, touching a file once it runs')\n"
        "_end = kvm_main.kvm_mmu_notifier_invalidate_range_end.impl\n"
        "@patch.override('kvm_mmu_notifier_invalidate_range_end')\n"
        "async def kvm_mmu_notifier_invalidate_range_end(sub, range_):\n"
        "    pathlib.Path(os.environ['KMODEL_TEST_MARKER']).touch()\n"
        "    await _end(sub, range_)\n")
    env = dict(os.environ, PYTHONUNBUFFERED="1", KMODEL_TEST_MARKER=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kmodel.cli", "check", "--patch", str(spy), "--scenario",
         "oom,vcpu,madvise", "--preset", "nonrt", "--strategy", "naive",
         "--out", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "complete:  no: interrupted" in out
    assert "interrupted" in out.splitlines()[-1]
    assert "Traceback" not in err


def test_interrupt_after_a_report_still_prints_and_saves_it(tmp_path):
    """KeyboardInterrupt raised inside the exploration (what Ctrl-C does), after the
    first execution reported: the report is printed and saved, exit 130."""
    stopper = tmp_path / "stopper.py"
    stopper.write_text(
        "from kmodel.patching import Patch\n"
        "from kmodel.linux.virt.kvm import kvm_main\n"
        "patch = Patch(name='stopper', title='Ctrl-C on the third range_end')\n"
        "_end = kvm_main.kvm_mmu_notifier_invalidate_range_end.impl\n"
        "calls = [0]\n"
        "@patch.override('kvm_mmu_notifier_invalidate_range_end')\n"
        "async def kvm_mmu_notifier_invalidate_range_end(sub, range_):\n"
        "    calls[0] += 1\n"
        "    if calls[0] == 12:\n"
        "        raise KeyboardInterrupt\n"
        "    await _end(sub, range_)\n")
    res = run("check", "--patch", stopper, "--scenario", "oom-reap", "--strategy", "dpor",
              "--out", tmp_path / "out")
    assert res.exit_code == 130, res.output
    assert SPLAT in res.output
    assert "no: interrupted" in res.output
    assert list((tmp_path / "out").glob("*.json"))


# -- reports as text --------------------------------------------------------------------

def test_lock_holds_pair_acquires_with_releases():
    from kmodel.engine import ACQ_R, ACQ_W, REL_R, REL_W, TRY_R, TRY_W
    from kmodel.report.locks import LockStep

    def step(task, label, kind=None, key=0, name=""):
        return (task, "f", label, LockStep(kind, key, name) if kind is not None else None)
    x, mm, srcu, y, gpc, sem = ((1, "&x"), (2, "&mm->mmap_lock"), (3, "&kvm->srcu"),
                                (4, "&y"), (5, "&gpc->lock"), (6, "&sem"))
    trace = [step("a", "spin_lock(&x)", ACQ_W, *x),
             step("b", "down_read(&mm->mmap_lock)", ACQ_R, *mm),
             step("a", "srcu_read_lock(&kvm->srcu)", ACQ_R, *srcu),
             step("a", "spin_unlock(&x)", REL_W, *x),
             step("b", "down_read_trylock(&y)", TRY_R, *y),
             step("b", "up_read(&mm->mmap_lock)", REL_R, *mm),
             step("a", "write_lock_irq(&gpc->lock)", ACQ_W, *gpc),
             step("a", "write_unlock_irq(&gpc->lock)", REL_W, *gpc),
             step("b", "READ_ONCE(x)", None),
             # a fast path that fails, then the slow path's acquire, then the release
             step("c", "down_write(&sem)", TRY_W, *sem),
             step("c", "rwsem_down_write_slowpath(&sem) [queued]", ACQ_W, *sem),
             step("c", "up_write(&sem)", REL_W, *sem)]
    holds = {(h.task, h.lock): (h.start, h.end, h.released, h.shared, h.how)
             for h in lock_holds(trace)}
    assert holds[("a", "&x")] == (0, 3, True, False, "spin_lock(&x)")
    assert holds[("b", "&mm->mmap_lock")] == (1, 5, True, True,
                                               "down_read(&mm->mmap_lock)")
    assert holds[("a", "&kvm->srcu")][:4] == (2, 11, False, True)    # never released
    assert holds[("a", "&gpc->lock")][:4] == (6, 7, True, False)
    assert ("b", "&y") not in holds                              # a trylock never released
    assert holds[("c", "&sem")] == (10, 11, True, False,
                                    "rwsem_down_write_slowpath(&sem) [queued]")
    assert len(holds) == 5


def test_lock_holds_come_from_the_primitives_ops():
    """A replayed execution: each step says what it did to which lock, by op kind."""
    from kmodel.engine import ACQ_R, REL_R
    from kmodel.report.locks import LockStep
    cr = api.run_check(api.CheckSpec(scenario="oom-reap", preset="rt",
                                     stop_on_first=True))
    tr = api.replay(cr.replay_record(cr.result.reports[0])).trace
    steps = [(t, label, ls) for t, _f, label, ls in tr if ls is not None]
    assert ("oom_reaper", "srcu_read_lock(srcu)", ACQ_R) in \
        [(t, label, ls.kind) for t, label, ls in steps]
    assert all(isinstance(ls, LockStep) for _t, _l, ls in steps)
    # SRCU's per-reader slot (a tuple object) is not a lock
    assert not any("end of reader" in label for _t, label, _ls in steps)
    assert any(ls.kind == REL_R and ls.name == "srcu" for _t, _l, ls in steps)
    held = {(h.task, h.lock, h.shared) for h in lock_holds(tr)}
    assert ("oom_reaper", "&qemu_mm->mmap_lock", True) in held


def test_trace_table_marks_the_step_and_names_the_next_operation():
    trace = [("t1", "f", f"op{i}") if i % 2 else ("t2", "g", f"op{i}") for i in range(40)]
    text = trace_table(trace, 30, task="t2")
    lines = text.splitlines()
    assert lines[0] == "Interleaving: steps 6-30 of 40 (6 earlier steps not shown; " \
                       "--full-trace shows them)"
    assert lines[-3].startswith(">   30  t2  ")
    assert "on its way to step 32: op32 in g" in lines[-2]
    assert "goes on for 9 more steps" in lines[-1]


# -- the README and CI ------------------------------------------------------------------

def test_readme_quickstart_and_ci_agree():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    quick = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    cmds = re.findall(r"^    (\S.*)$", quick, re.MULTILINE) or \
        re.findall(r"^(pip .*)$", quick, re.MULTILINE)
    assert cmds == ["pip install . && kmodel matrix",
                    "pip install '.[test]' && python -m pytest"]
    assert "pip install '.[test]' && python -m pytest" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_readme_names_every_design_and_scenario():
    readme = (ROOT / "README.md").read_text()
    for name in list(ORDER) + list(SCENARIOS):
        assert name in readme, f"{name} missing from README.md: run " \
                               f"`python tools/update_readme.py`"
