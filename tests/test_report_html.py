"""The HTML timeline: self-contained, and what a browser makes of it.

The browser test renders the page in headless Chromium (Debian's package, which .ci/run
installs) and reads the DOM after the page's script ran.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from kmodel.cli import cli
from kmodel.engine.schedule import decode


@pytest.fixture(scope="module")
def timeline(tmp_path_factory):
    d = tmp_path_factory.mktemp("html")
    res = CliRunner().invoke(cli, ["check", "--scenario", "oom-reap", "--preset", "rt",
                                   "--out", str(d / "out"), "--html", str(d / "t.html"),
                                   "--json", str(d / "c.json")], catch_exceptions=False)
    assert res.exit_code == 1, res.output
    report = json.loads((d / "c.json").read_text())["reports"][0]
    return d / "t.html", report


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_page_is_self_contained(timeline):
    path, report = timeline
    html = path.read_text()
    p = _Collect()
    p.feed(html)
    for tag, attrs in p.tags:
        assert tag not in ("link", "iframe", "img", "object", "embed"), tag
        assert "src" not in attrs, (tag, attrs)
        href = attrs.get("href", "")
        assert not href or href.startswith("#"), href
    assert "http://" not in html and "https://" not in html
    assert "@import" not in html and "url(" not in html


def test_page_has_a_column_per_task_and_a_row_per_step(timeline):
    path, report = timeline
    p = _Collect()
    p.feed(path.read_text())
    heads = [a["data-task"] for t, a in p.tags if t == "th" and "data-task" in a]
    tasks = list(dict.fromkeys(decode(s)[0] for s in report["schedule"]))
    assert sorted(heads) == sorted(tasks)
    rows = [a for t, a in p.tags if t == "tr" and "data-step" in a]
    assert len(rows) == len(report["schedule"])
    marked = [a for a in rows if a.get("id") == "violation"]
    assert len(marked) == 1 and marked[0]["data-step"] == str(report["step"])
    assert "violation" in marked[0]["class"]
    bars = [a for t, a in p.tags if "bar" in a.get("class", "").split()]
    assert any(a.get("data-lock") == "&qemu_mm->mmap_lock" for a in bars)


def test_page_shows_the_splat(timeline):
    path, report = timeline
    html = path.read_text()
    assert "BUG: sleeping function called from invalid context" in html
    assert "kvm_mmu_notifier_invalidate_range_start" in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


def test_timeline_renders_in_headless_chromium(timeline, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium binary on PATH (.ci/run installs Debian's chromium)")
    path, report = timeline
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--enable-logging=stderr", "--v=0", "--dump-dom", path.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    # the inline script ran to its end without an error
    assert 'data-ok="1"' in body.group(0), body.group(0)
    assert f'data-steps="{len(report["schedule"])}"' in body.group(0)
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console
    for task in dict.fromkeys(decode(s)[0] for s in report["schedule"]):
        assert f'data-task="{task}"' in dom and f">{task}</th>" in dom, task
    assert re.search(rf'<tr data-step="{report["step"]}" data-task="[^"]+" '
                     rf'id="violation" class="violation">', dom)
    assert "reported here" in dom
