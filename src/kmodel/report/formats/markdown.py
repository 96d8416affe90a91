"""A GitHub-Markdown table of the matrix (``kmodel matrix --markdown FILE``): what to
paste into a mail or an issue."""

from __future__ import annotations

from pathlib import Path

from ..matrix import LEGEND, SYMBOL, first_report_cell, scenario_names
from . import Format, register


def to_markdown(rows: list, build_rows: list | None = None) -> str:
    scen = scenario_names(rows)
    head = ["design", "preset", "arch", "verdict", "first report", "executions", "time"] \
        + [f"`{s}`" for s in scen]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join(["---"] * 3 + [":---:", "---", "---:", "---:"]
                            + [":---:"] * len(scen)) + "|"]
    for row in rows:
        cells = [f"`{row.design}`", row.preset, row.arch, f"**{row.verdict}**",
                 first_report_cell(row).replace("|", "\\|"), str(row.executions),
                 f"{row.elapsed_s:.1f} s"]
        cells += [SYMBOL.get(row.scenarios.get(s, ""), " ") for s in scen]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(LEGEND)
    if build_rows:
        lines += ["", "MMU_NOTIFIER=n build:", "",
                  "| design | preset | build | first error |", "|---|---|:---:|---|"]
        for b in build_rows:
            err = b.errors[0].replace("|", "\\|") if b.errors else ""
            lines.append(f"| `{b.design}` | {b.preset} | {b.verdict} | {err} |")
    return "\n".join(lines) + "\n"


register(Format(
    "markdown",
    {"matrix": "Write a GitHub-markdown table."},
    write_matrix=lambda path, out: Path(path).write_text(to_markdown(out.rows,
                                                                     out.build_rows))))


__all__ = ["to_markdown"]
