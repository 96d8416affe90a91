"""docs/extending.md's examples run: every ``python`` block, in order, in an empty
directory; a block that starts with ``# file: NAME`` is written to NAME instead."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def test_the_examples_run(tmp_path, monkeypatch):
    blocks = BLOCK.findall(DOC.read_text())
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "extending_md"}
    files = 0
    for i, code in enumerate(blocks):
        m = re.match(r"# file: (\S+)\n", code)
        if m:
            (tmp_path / m.group(1)).write_text(code)
            files += 1
            continue
        exec(compile(code, f"{DOC.name}[block {i}]", "exec"), namespace)
    assert files == 1
    # the blocks asserted what they show; the doc's table names each kind
    text = DOC.read_text()
    for kind in ("a design", "a scenario", "an activity", "a strategy",
                 "a report format", "a primitive"):
        assert f"| {kind} " in text and f"## {kind[0].upper()}{kind[1:]}" in text


def test_the_readme_links_it():
    readme = (DOC.parent.parent / "README.md").read_text()
    assert "docs/extending.md" in readme
