"""kmodel repro: the generated C program, its plan, and the bad inputs and environments
(none of these need root or KVM)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from kmodel.cli import cli
from kmodel.realkernel import env, generate


def test_scenario_plan_runs_the_vm_activities_before_the_kill():
    r = generate.from_scenario("oom-exit")
    order = [s.activity for s in r.plan]
    assert order == ["vcpu", "exit", "oom"]
    assert ("vcpu", "D") in r.plan[2].deps and ("exit", "S") in r.plan[2].deps
    src = r.source()
    assert "#define ACTS_MASK ((1u << A_OOM) | (1u << A_EXIT) | (1u << A_VCPU))" in src
    assert "process_mrelease" in src and "KVM_SET_USER_MEMORY_REGION" in src


def test_replay_record_orders_activities_as_the_schedule():
    rec = {"format": 1, "patches": ["upstream"], "preset": "rt", "arch": "x86",
           "scenario": "memslot-vs-madvise",
           "schedule": ["qemu-madvise", "qemu-madvise", "qemu-ioctl", "qemu-madvise",
                        "qemu-ioctl"]}
    r = generate.from_replay(rec)
    assert [s.activity for s in r.plan] == ["madvise", "memslot"]
    # memslot starts (step 2) while madvise runs (steps 0-3): released once it started
    assert r.plan[1].deps == [("madvise", "S")]
    assert "the kernel decides" in r.plan[1].note
    rec["schedule"] = ["qemu-madvise", "qemu-ioctl"]
    assert generate.from_replay(rec).plan[1].deps == [("madvise", "D")]


def test_replay_record_notes_the_oom_reaper_it_cannot_order():
    rec = {"scenario": "oom-reap", "schedule": ["stress-ng", "oom_reaper", "qemu-vcpu0"]}
    r = generate.from_replay(rec)
    assert any(n.startswith("the kernel's oom_reaper thread (steps 1-1)") for n in r.notes)
    assert any("start after the kill" in n for n in r.notes)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler (gcc)")
@pytest.mark.parametrize("scenario", ["mrelease", "oom-reap", "memslot-vs-madvise",
                                      "oom-vm-close", "other-mm", "cow-fault-hack",
                                      "reclaim", "vcpu,munmap,exit"])
def test_reproducer_compiles_without_warnings(tmp_path, scenario):
    src, line = generate.write(generate.from_scenario(scenario), tmp_path)
    p = subprocess.run(line.split(), capture_output=True, text=True)
    assert p.returncode == 0 and p.stderr == "", p.stderr


def test_cli_repro_writes_the_program_and_its_build_line(tmp_path):
    res = CliRunner().invoke(cli, ["repro", "mrelease", "-o", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "repro.c").is_file()
    assert f"build: gcc -O2 -Wall -o {tmp_path}/repro {tmp_path}/repro.c -lpthread" \
        in res.output


def test_cli_repro_from_a_replay_file(tmp_path):
    rec = tmp_path / "r.json"
    rec.write_text(json.dumps({"format": 1, "scenario": "mrelease",
                               "schedule": ["lmkd", "qemu-vcpu0"]}))
    res = CliRunner().invoke(cli, ["repro", str(rec), "-o", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "mrelease (steps 0-0), vcpu (steps 1-1)" in res.output


@pytest.mark.parametrize("arg,msg", [("nosuch", "unknown scenario or activity 'nosuch'"),
                                     ("/nonexistent.json", "cannot read replay record")])
def test_cli_repro_bad_input_is_one_line_exit_2(arg, msg):
    res = CliRunner().invoke(cli, ["repro", arg])
    assert res.exit_code == 2
    assert msg in res.output and res.output.count("\n") == 1


@pytest.mark.parametrize("var,value,msg", [
    ("KMODEL_UID", "1000", "not root"),
    ("KMODEL_KVM_DEV", "/nonexistent/kvm", "no /nonexistent/kvm"),
    ("KMODEL_TRACEFS", "/nonexistent/tracing", "no tracefs at /nonexistent/tracing"),
    ("KMODEL_CC", "no-such-cc", "no C compiler: no-such-cc"),
    ("KMODEL_CGROUP_ROOT", "/nonexistent/cgroup", "no memory cgroup under"),
])
def test_conform_bad_environment_is_one_line_exit_2(monkeypatch, var, value, msg):
    monkeypatch.setenv("KMODEL_UID", "0")
    monkeypatch.setenv("KMODEL_KVM_DEV", "/dev/null")       # exists, read-write
    monkeypatch.setenv("KMODEL_TRACEFS", "/")               # has no instances/
    monkeypatch.setenv("KMODEL_CC", "sh")                   # on PATH
    monkeypatch.setenv(var, value)
    if var != "KMODEL_TRACEFS":
        monkeypatch.setenv("KMODEL_TRACEFS", _fake_tracefs(monkeypatch))
    res = CliRunner().invoke(cli, ["conform", "oom-reap"])
    assert res.exit_code == 2, res.output
    assert msg in res.output and res.output.count("\n") == 1, res.output


def _fake_tracefs(monkeypatch):
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp())
    (d / "instances").mkdir()
    (d / "events" / "kvm" / "kvm_unmap_hva_range").mkdir(parents=True)
    return str(d)


def test_env_checks_name_what_is_missing(monkeypatch):
    monkeypatch.setenv("KMODEL_UID", "0")
    monkeypatch.setenv("KMODEL_KVM_DEV", "/nonexistent/kvm")
    with pytest.raises(env.Missing, match="no /nonexistent/kvm: this kernel or machine"):
        env.check_run(["vcpu"], tracing=False)
