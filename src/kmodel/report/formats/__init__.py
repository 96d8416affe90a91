"""Output formats: one module each in this package, found and registered when it is
imported, so that adding a format is adding one file.

A format module calls ``register(Format(...))``.  The command line offers each
registered format as an option ``--NAME FILE`` of the commands its ``help`` names
(``check``, ``replay``, ``matrix``) and calls its writer with the file and what the
command found:

- ``write_check(path, cr, shown)`` for ``check`` and ``replay``: ``cr`` the
  ``CheckResult``, ``shown`` its reports as printed, ``[(report, trace, replay path)]``
  (``trace`` the replayed execution's steps, or None);
- ``write_matrix(path, out)`` for ``matrix``: ``out`` a ``MatrixOutput``.

The terminal's text (``report.text``, ``report.matrix``) is not a file format: every
command prints it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field

COMMANDS = ("check", "replay", "matrix")


@dataclass(frozen=True)
class Format:
    name: str                                  # the option: --NAME FILE
    help: dict[str, str]                       # command -> the option's help
    write_check: Callable | None = None        # (path, cr, shown), check and replay
    write_matrix: Callable | None = None       # (path, MatrixOutput)

    def offered_by(self, command: str) -> bool:
        return command in self.help


@dataclass
class MatrixOutput:
    """What ``kmodel matrix`` found, for a format to write."""
    rows: list                                 # kmodel.matrix.MatrixRow
    build_rows: list = field(default_factory=list)   # kmodel.matrix.BuildRow
    checks: list = field(default_factory=list)       # every CheckResult, in order
    errors: list = field(default_factory=list)       # (CheckSpec, message) of crashes


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    """Add ``fmt`` to the formats the commands offer."""
    bad = set(fmt.help) - set(COMMANDS)
    if bad:
        raise ValueError(f"format {fmt.name}: no command {sorted(bad)[0]!r}; "
                         f"commands: {', '.join(COMMANDS)}")
    if ("check" in fmt.help or "replay" in fmt.help) and fmt.write_check is None:
        raise ValueError(f"format {fmt.name} is offered by check/replay: give write_check")
    if "matrix" in fmt.help and fmt.write_matrix is None:
        raise ValueError(f"format {fmt.name} is offered by matrix: give write_matrix")
    if fmt.name in FORMATS and FORMATS[fmt.name] != fmt:
        raise ValueError(f"two formats named {fmt.name}")
    FORMATS[fmt.name] = fmt
    return fmt


def offered_by(command: str) -> list[Format]:
    """The formats ``command`` offers, by name."""
    return [f for _, f in sorted(FORMATS.items()) if f.offered_by(command)]


for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")


__all__ = ["Format", "MatrixOutput", "FORMATS", "register", "offered_by", "COMMANDS"]
