"""Errors the user can fix, and how kmodel words them: one line each.

``BadInput`` is anything wrong with what the user asked for (an unknown name, a bad value,
a patch file that raises): the command line prints it as one line and exits 2.  The
helpers here build those lines the same way everywhere: ``did_you_mean`` for a name that
is close to a known one, ``unknown`` for the whole "unknown X" message, ``short`` for a
value quoted in a message, ``one_line`` for text that must fit on a line, ``where`` for
the place an unexpected exception came from.
"""

from __future__ import annotations

import difflib
import traceback
from pathlib import Path


class BadInput(Exception):
    """Input the user can fix: one line, exit status 2."""


class BuildOnly(BadInput):
    """The configuration builds but cannot run a scenario (MMU_NOTIFIER=n: KVM selects
    it): the build was the whole check, and it passed."""


def close_match(name: str, choices) -> str | None:
    """The one of ``choices`` closest to ``name``, if any is close enough to suggest."""
    m = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return m[0] if m else None


def did_you_mean(name: str, choices) -> str:
    """`` (did you mean X?)`` when one of ``choices`` is close to ``name``, else ``""``."""
    close = close_match(name, choices)
    return f" (did you mean {close}?)" if close else ""


def unknown(what: str, name, choices, plural: str | None = None) -> BadInput:
    """The one-line error for a name that is not one of ``choices``, with a "did you
    mean" hint when one is close (as for designs, scenarios and knobs): ``unknown arch
    'arm' (did you mean arm64?); arches: x86, arm64``."""
    choices = list(choices)
    hint = did_you_mean(name, choices) if isinstance(name, str) else ""
    return BadInput(f"unknown {what} {short(name)}{hint}; {plural or what + 's'}: "
                    f"{', '.join(choices)}")


def short(value, limit: int = 60) -> str:
    """``repr(value)``, cut to one short line for an error message."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def one_line(text) -> str:
    """``text`` with every run of white space (newlines too) made one space."""
    return " ".join(str(text).split())


def where(e: BaseException) -> str:
    """" (at file:line, in function)" of the innermost frame, the path shortened to the
    package or the working directory."""
    tb = traceback.extract_tb(e.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    path = Path(f.filename)
    pkg = Path(__file__).resolve().parent.parent
    for base in (pkg, Path.cwd()):
        try:
            path = path.resolve().relative_to(base)
            break
        except ValueError:
            continue
    return f" (at {path}:{f.lineno}, in {f.name})"


__all__ = ["BadInput", "BuildOnly", "close_match", "did_you_mean", "unknown", "short",
           "one_line", "where"]
