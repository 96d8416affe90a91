#!/usr/bin/env python3
"""Paste the output of `kmodel list` into README.md, between its markers.

    python tools/update_readme.py          # rewrite README.md
    python tools/update_readme.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

from click.testing import CliRunner

from kmodel.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- BEGIN kmodel list (python tools/update_readme.py) -->"
END = "<!-- END kmodel list -->"


def block() -> str:
    res = CliRunner().invoke(cli, ["list"], catch_exceptions=False)
    return f"{BEGIN}\n```\n$ kmodel list\n{res.output.rstrip()}\n```\n{END}"


def main() -> int:
    text = README.read_text()
    head, sep, rest = text.partition(BEGIN)
    _old, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        print(f"README.md has no {BEGIN!r} ... {END!r} markers", file=sys.stderr)
        return 2
    new = head + block() + tail
    if "--check" in sys.argv:
        if new != text:
            print("README.md is out of date: run python tools/update_readme.py",
                  file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
