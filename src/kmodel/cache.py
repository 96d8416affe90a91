"""Results kept between runs: a check whose inputs have not changed answers from here.

An entry is one ``CheckResult``, keyed by a hash of everything that can change it:

- the model's sources: every ``src/kmodel/**/*.py`` except the designs (``patches/``);
- the patch files the check applies (its designs and its scenario's aids, built-in or
  given by path), with the built-in patch files each of them imports (a design built on
  another one, or on a shared helper): editing one design re-runs only its checks;
- the whole ``CheckSpec`` (designs, preset, config, arch, scenario, knobs, strategy,
  limits, seed, ...), whether the search was partitioned over workers, and the Python
  version.

A check that a ``--time`` cap stopped is not kept: where it stopped depends on how fast
the machine was and how busy, so a kept one would pin a partial answer that a re-run
could complete or take further; a user who capped a check expects the next run to look
again.  A check stopped by Ctrl-C is not kept either.  Stops that do not depend on speed
are kept: the first report with ``stop_on_first``, ``--max-executions``.

The directory is the user's cache directory (``platformdirs``: ``~/.cache/kmodel`` on
Linux), or ``$KMODEL_CACHE_DIR``.  ``KMODEL_NO_CACHE=1`` (or ``--no-cache``) runs every
check.  Entries are pickles, written atomically; an entry that cannot be read counts as
missing.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import platformdirs

from .patches import AIDS, ORDER

FORMAT = b"kmodel-cache-1"
PACKAGE = Path(__file__).resolve().parent
PATCHES = PACKAGE / "patches"


def directory() -> Path:
    """Where entries are kept: ``$KMODEL_CACHE_DIR`` or the user's cache directory."""
    env = os.environ.get("KMODEL_CACHE_DIR")
    return Path(env) if env else Path(platformdirs.user_cache_dir("kmodel")) / "checks"


def enabled(no_cache: bool = False) -> bool:
    """The command line's answer: not with ``--no-cache`` or ``KMODEL_NO_CACHE=1``."""
    return not no_cache and os.environ.get("KMODEL_NO_CACHE", "") in ("", "0")


_MODEL_DIGEST: str | None = None


def model_digest() -> str:
    """A hash of the model's sources (every .py under src/kmodel but the designs), once
    per process."""
    global _MODEL_DIGEST
    if _MODEL_DIGEST is None:
        h = hashlib.sha256()
        for path in sorted(PACKAGE.rglob("*.py")):
            if PATCHES in path.parents:
                continue
            h.update(str(path.relative_to(PACKAGE)).encode() + b"\0")
            h.update(path.read_bytes() + b"\0")
        _MODEL_DIGEST = h.hexdigest()
    return _MODEL_DIGEST


def patch_files(names) -> list[Path]:
    """The files of the patches ``names`` (built-in names or paths) and the built-in
    patch files they import, in a stable order."""
    known = {**ORDER, **AIDS}
    todo = [PATCHES / f"{known[n]}.py" if n in known else Path(n) for n in names]
    seen: dict[Path, None] = {}
    while todo:
        path = todo.pop(0).resolve()
        if path in seen:
            continue
        seen[path] = None
        todo += _imported_patch_files(path)
    return list(seen)


def _imported_patch_files(path: Path) -> list[Path]:
    """The built-in patch modules ``path`` imports (kmodel.patches.X, from kmodel.patches
    import X, and relative imports inside patches/)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (OSError, SyntaxError, ValueError):
        return []
    inside = PATCHES in path.parents
    mods = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 and inside:
                base = "kmodel.patches" + ("." + base if base else "")
            elif node.level:
                continue
            mods += [base] + [f"{base}.{a.name}" for a in node.names]
    out = []
    for m in mods:
        if m.startswith("kmodel.patches."):
            f = PATCHES / (m.split(".")[2] + ".py")
            if f.is_file():
                out.append(f)
    return out


def key(spec, names, partitioned: bool) -> str:
    """The entry of a check: ``spec`` (a CheckSpec), ``names`` the patches it applies
    (its scenario's aids, then its designs), ``partitioned`` whether its search is split
    over workers."""
    h = hashlib.sha256(FORMAT)
    h.update(f"python {sys.version_info[0]}.{sys.version_info[1]}\0".encode())
    h.update(model_digest().encode())
    for path in patch_files(names):
        try:
            data = path.read_bytes()
        except OSError:
            data = b"(unreadable)"
        h.update(b"\0patch\0" + str(path).encode() + b"\0" + data)
    h.update(json.dumps(asdict(spec), sort_keys=True, default=repr).encode())
    h.update(b"partitioned" if partitioned else b"sequential")
    return h.hexdigest()


def _path(k: str) -> Path:
    return directory() / k[:2] / f"{k}.pickle"


def load(k: str):
    """The CheckResult kept under ``k``, or None."""
    try:
        with open(_path(k), "rb") as f:
            return pickle.load(f)
    except FileNotFoundError:
        return None
    except Exception:                    # a torn or foreign file: as if missing
        return None


def keepable(spec, result) -> bool:
    """Whether a check's result may be kept: not interrupted, and not stopped by the
    --time cap (see the module docstring)."""
    if result.interrupted:
        return False
    if spec.time_limit is None or result.complete:
        return True
    if spec.stop_on_first and result.reports:
        return True
    if spec.max_executions is not None and result.executions >= spec.max_executions:
        return True
    return False


def store(k: str, check_result) -> None:
    """Keep ``check_result`` under ``k`` (atomically: a reader sees all of it or none);
    a cache that cannot be written is skipped silently -- it only saves time."""
    path = _path(k)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                pickle.dump(check_result, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        pass


__all__ = ["directory", "enabled", "key", "load", "store", "keepable", "patch_files",
           "model_digest"]
