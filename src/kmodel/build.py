"""Building the model a check runs: ``prepare(spec) -> Model``.

``prepare`` checks a ``CheckSpec`` and builds the kernel configuration, the scenario, the
patches (the scenario's aids, then the designs, in order) and the factory that makes one
program per execution.  Anything wrong is ``BadInput`` with one line, before anything
runs.  A patch file the user wrote can also fail later, while the model runs it:
``patch_error`` turns that into bad input naming the file and the line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from . import scenarios
from .errors import BadInput, one_line, short, unknown
from .linux.config import PRESETS, SYMBOLS, Config
from .patches import AIDS, ORDER
from .patching import Patch, PatchError, load
from .spec import ARCHES, CheckSpec, check_spec
from .strategies import STRATEGIES


@dataclass
class Model:
    """What a check runs: ``factory()`` makes a new program per execution, on a kernel
    built with ``config`` and with ``patches`` applied (``patching.applied``)."""
    config: Config
    scenario: scenarios.ScenarioDef
    patches: list[Patch]
    factory: Callable


def build_config(preset: str, overrides: dict) -> Config:
    """A preset with config symbols overridden; BadInput for an unknown preset or symbol
    or a value that is not true/false."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise unknown("preset", preset, PRESETS)
    cfg = PRESETS[preset]
    for sym, val in overrides.items():
        if sym not in SYMBOLS:
            raise unknown("config symbol", sym, SYMBOLS, "symbols")
        if not isinstance(val, bool):
            raise BadInput(f"config symbol {sym} takes true or false (y or n), not "
                           f"{short(val)}")
        cfg = cfg.set(sym, val)
    return cfg


def prepare(spec: CheckSpec, where: str = "") -> Model:
    """Check ``spec`` and build what a run needs.  Anything wrong is ``BadInput`` (one
    line; ``where`` prefixes a message about a field)."""
    check_spec(spec, where)
    if spec.arch not in ARCHES:
        raise unknown("arch", spec.arch, ARCHES, "arches")
    if spec.strategy not in STRATEGIES:
        raise unknown("strategy", spec.strategy, STRATEGIES, "strategies")
    config = build_config(spec.preset, spec.config)
    try:
        sdef = scenarios.resolve(spec.scenario)
        scenarios.check_knobs(spec.knobs)
    except KeyError as e:
        raise BadInput(e.args[0]) from None
    patches = []
    for name in list(sdef.aids) + list(spec.patches):
        try:
            patches.append(load(name, patches))
        except PatchError as e:
            raise BadInput(str(e)) from None
        except (OSError, ValueError) as e:      # a path the file system refuses
            raise BadInput(f"cannot read patch file {short(name)}: {e}") from None
    factory = scenarios.factory(sdef, config, spec.arch, spec.knobs)
    return Model(config, sdef, patches, factory)


# -- a patch file that fails while the model runs it ----------------------------------

def user_patch_files(names) -> dict[str, str]:
    """The patch files among ``names`` (the rest are built-in): real path -> the name
    given."""
    return {os.path.realpath(n): n for n in names
            if isinstance(n, str) and n not in ORDER and n not in AIDS}


_TB_LINE = re.compile(r'^\s*File "(.+)", line (\d+), in (\S+)\s*$', re.MULTILINE)


def reraise_patch_error(e: BaseException, names) -> None:
    """A patch that fails to apply, or a patch file that raises while the model runs it,
    is bad input, named by its file and line (the original exception is the cause:
    --debug shows it).  Returns for anything else: the model's own crash, which goes on
    as it is."""
    if isinstance(e, PatchError):
        raise BadInput(str(e)) from None
    bad = raised_in_patch(e, names)
    if bad is not None:
        raise bad from e


def raised_in_patch(e: BaseException, names) -> BadInput | None:
    """A user's patch file raised ``e`` while the model ran it: the one-line BadInput that
    names the file and the line (the innermost frame in one of the patch files), or None
    when no patch file is on the traceback (the model itself crashed).  An exception from
    a worker process carries the worker's traceback as text in its cause
    (concurrent.futures' _RemoteTraceback): that is read too."""
    files = user_patch_files(names)
    if not files:
        return None
    hit = None
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        name = files.get(os.path.realpath(code.co_filename))
        if name is not None:
            hit = (name, tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    if hit is None and e.__cause__ is not None:
        for m in _TB_LINE.finditer(str(e.__cause__)):
            name = files.get(os.path.realpath(m.group(1)))
            if name is not None:
                hit = (name, int(m.group(2)), m.group(3))
    if hit is None:
        return None
    msg = one_line(e)
    return BadInput(f"{hit[0]}:{hit[1]}: patch raised {type(e).__name__}"
                    f"{': ' + msg if msg else ''} (in {hit[2]}, while the model ran it)")


__all__ = ["Model", "prepare", "build_config", "reraise_patch_error", "raised_in_patch",
           "user_patch_files"]
