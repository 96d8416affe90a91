"""What a check found, in the forms people and tools read.

- ``text``: the splat as dmesg prints it, the interleaving as a table, the replay command
  and a summary: what a kernel developer pastes into a reply on the list.
- ``matrix``: the matrix's rows as a table on the terminal.
- ``diff``: a design as a unified diff against the upstream model.
- ``formats/``: the files the commands write, one module per format, each registered
  as an option ``--NAME FILE``: ``json`` (one object per check, the schema in
  README.md), ``junit`` (JUnit XML for CI, one testcase per design x preset x arch x
  scenario), ``html`` (one self-contained page, the tasks as columns and the steps as
  rows, lock holds as bars and the violating step marked), ``markdown`` (the matrix as
  a table to paste into a mail).
"""

from .locks import LockHold, lock_holds
from .text import (one_line_summary, render_report, render_summary, replay_file_name,
                   trace_table)

__all__ = ["LockHold", "lock_holds", "render_report", "render_summary", "replay_file_name",
           "trace_table", "one_line_summary"]
