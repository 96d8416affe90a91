"""benchmarks/exploration.py prints a well-formed table (its --quick mode, tiny caps)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_exploration_quick_prints_one_well_formed_row_per_scenario():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "exploration.py"),
                          "--quick", "--preset", "nonrt", "--cap", "0.3",
                          "--factor-limit", "0.3", "--factor-cap", "20"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    assert head == ["scenario", "preset", "classes", "executions", "complete", "s", "exec/s",
                    "states visited/merged", "reuse x", "naive/dpor", "jobs2 x"]
    assert set(lines[1]) <= {"|", "-"}
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert [r[0] for r in rows] == ["memslot-vs-madvise", "oom-vs-madvise",
                                    "memslot,madvise,munmap"]
    for r in rows:
        assert len(r) == len(head) and r[1] == "nonrt"
        assert int(r[2]) >= 1 and int(r[3]) >= int(r[2])     # classes <= executions
        assert r[4] in ("yes", "no") and float(r[5]) > 0
        assert r[7] == "-"                                    # dpor stores no states
        if r[4] == "no":                                      # factors: completed rows only
            assert r[8:] == ["-", "-", "-"]
