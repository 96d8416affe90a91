"""The matrix's rows as people read them on the terminal: the Rich table ``kmodel
matrix`` prints (``print_table``), and the cells and legend the Markdown format
(``formats.markdown``) shares.  The rows are ``kmodel.matrix.run_matrix``'s."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

SYMBOL = {"reports": "✗", "clean": "✓", "clean-so-far": "~", "error": "E",
          "build-error": "✗", "builds": "✓"}
LEGEND = ("✗ reports · ✓ clean (explored completely) · ~ clean so far (a time cap or limit "
          "stopped the search) · E the check crashed")


def scenario_names(rows: list) -> list[str]:
    names: dict[str, None] = {}
    for row in rows:
        for s in row.scenarios:
            names.setdefault(s, None)
    return list(names)


def first_report_cell(row) -> str:
    f = row.first_report
    if not f:
        if row.errors:
            s, msg = next(iter(row.errors.items()))
            return f"error in {s}: {msg.splitlines()[0][:80]}"
        return ""
    return f"{f.kind} in {f.function} ({f.scenario})"


STYLE = {"reports": "bold red", "clean": "green", "clean-so-far": "yellow",
         "error": "bold magenta", "build-error": "bold red", "builds": "green"}


def print_table(rows: list, build_rows: list | None,
                time_per_cell: float | None) -> None:
    """The matrix on stdout: one line per row, a column per scenario (numbered, named
    below the table), then the MMU_NOTIFIER=n build table."""
    console = Console(width=None if sys.stdout.isatty() else 160)
    scen = scenario_names(rows)
    t = Table(title="kmodel matrix", title_justify="left")
    for col, kw in (("design", {}), ("preset", {}), ("arch", {}), ("verdict", {}),
                    ("first report", {"overflow": "fold"}),
                    ("execs", {"justify": "right"}), ("time", {"justify": "right"})):
        t.add_column(col, **kw)
    for i, _s in enumerate(scen, 1):
        t.add_column(str(i), justify="center")
    for row in rows:
        v = row.verdict
        cells = [row.design, row.preset, row.arch, f"[{STYLE.get(v, '')}]{v}[/]",
                 first_report_cell(row), str(row.executions),
                 f"{row.elapsed_s:.1f}s"]
        for s in scen:
            sv = row.scenarios.get(s, "")
            cells.append(f"[{STYLE.get(sv, '')}]{SYMBOL.get(sv, '')}[/]")
        t.add_row(*cells)
    console.print(t)
    console.print("Scenarios: " + ", ".join(f"{i} {s}" for i, s in enumerate(scen, 1)),
                  highlight=False)
    console.print(LEGEND + (f"; each check capped at {time_per_cell:g} s"
                            if time_per_cell else ""), highlight=False)
    if build_rows:
        b = Table(title="MMU_NOTIFIER=n build (KVM selects MMU_NOTIFIER: only the build "
                        "is checked)", title_justify="left")
        b.add_column("design")
        b.add_column("preset")
        b.add_column("build")
        b.add_column("first error", overflow="fold")
        for r in build_rows:
            v = r.verdict
            b.add_row(r.design, r.preset, f"[{STYLE.get(v, '')}]{v}[/]",
                      r.errors[0] if r.errors else "")
        console.print(b)


__all__ = ["SYMBOL", "LEGEND", "scenario_names", "first_report_cell", "print_table"]
