"""A design as a unified diff against the upstream model: what a reviewer reads first,
and what goes into a mail (``kmodel explain NAME --diff``).

For each function the design overrides, the upstream model's body (``-``) against the
design's (``+``); each function the design adds (``@patch.new_function`` or a plain
``@kfunc`` in its file), and the helpers its file defines, as added lines; each field it
sets (``patch.set``, e.g. an ops-table entry), the old value against the new.  Hunk
headers give each side's line in its file and the function with its kernel source.

Two things are left out so that the diff shows what the design changes and nothing
else: decorators and docstrings (the upstream model's explain the kernel function, a
design's rarely repeat them), and the module a design reaches a name through: where the
design writes ``kvm_main.mmu_notifier_to_kvm`` for the very function the upstream code
calls as ``mmu_notifier_to_kvm``, the diff shows the upstream spelling.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
import types
from difflib import SequenceMatcher
from pathlib import Path

from ..linux.kernel.core import REGISTRY
from ..patching import Patch

CONTEXT = 3
_ROOT = Path(__file__).resolve().parents[3]       # the checkout: src/kmodel/report/..
_DOTTED = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")


def module_of(patch: Patch) -> types.ModuleType | None:
    """The module that defines ``patch`` (a built-in design or a loaded patch file)."""
    for m in list(sys.modules.values()):
        if getattr(m, "patch", None) is patch:
            return m
    return None


def obj_name(obj) -> str:
    """How a model object is called in a listing: its name, else its type's."""
    for attr in ("name", "__name__"):
        v = getattr(obj, attr, None)
        if isinstance(v, str):
            return v
    return type(obj).__name__


def value_name(value) -> str:
    return getattr(value, "__name__", None) or repr(value)


def _path(filename: str) -> str:
    p = Path(filename).resolve()
    for base in (_ROOT, Path.cwd()):
        try:
            return str(p.relative_to(base))
        except ValueError:
            continue
    return str(p)


def _body(fn) -> tuple[str, list[tuple[int, str]]]:
    """(file, [(line number, text)]) of ``fn``'s definition, without its decorators and
    its docstring, dedented."""
    fn = inspect.unwrap(fn)
    lines, start = inspect.getsourcelines(fn)
    text = textwrap.dedent("".join(lines))
    numbered = list(enumerate(text.splitlines(), start))
    skip: set[int] = set()
    node = ast.parse(text).body[0]
    first = node.lineno                              # the def line, past decorators
    skip.update(range(1, first))
    body = getattr(node, "body", [])
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        skip.update(range(body[0].lineno, body[0].end_lineno + 1))
    kept = [(n, t) for i, (n, t) in enumerate(numbered, 1) if i not in skip]
    return inspect.getsourcefile(fn) or "?", kept


def _respell(lines, fn, upstream_globals: dict):
    """``mod.name`` as ``name`` where the upstream code's ``name`` is the same object."""
    g = getattr(inspect.unwrap(fn), "__globals__", {})

    def sub(m):
        mod = g.get(m.group(1))
        if isinstance(mod, types.ModuleType) and m.group(2) in upstream_globals \
                and getattr(mod, m.group(2), None) is upstream_globals[m.group(2)]:
            return m.group(2)
        return m.group(0)
    return [(n, _DOTTED.sub(sub, t)) for n, t in lines]


def _hunks(old: list[tuple[int, str]], new: list[tuple[int, str]], title: str) -> list[str]:
    a = [t for _, t in old]
    b = [t for _, t in new]
    out = []
    for group in SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(CONTEXT):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        start_a = old[i1][0] if i1 < len(old) else (old[-1][0] + 1 if old else 0)
        start_b = new[j1][0] if j1 < len(new) else (new[-1][0] + 1 if new else 0)
        out.append(f"@@ -{start_a if i2 > i1 else max(start_a - 1, 0)},{i2 - i1} "
                   f"+{start_b if j2 > j1 else max(start_b - 1, 0)},{j2 - j1} @@ {title}")
        for tag, x1, x2, y1, y2 in group:
            if tag == "equal":
                out += [" " + t for t in a[x1:x2]]
                continue
            out += ["-" + t for t in a[x1:x2]]
            out += ["+" + t for t in b[y1:y2]]
    return out


def _file_block(old_file: str | None, new_file: str, hunks: list[str]) -> list[str]:
    return [f"--- a/{_path(old_file)}" if old_file else "--- /dev/null",
            f"+++ b/{_path(new_file)}", *hunks]


def design_diff(patch: Patch) -> str:
    """``patch`` as a unified diff against the upstream model; "" if it changes nothing."""
    mod = module_of(patch)
    out: list[str] = []
    shown: set[int] = set()

    for name, fn in patch.overrides.items():
        shown.add(id(fn))
        target = REGISTRY.get(name)
        src = getattr(target, "kernel_source", "?")
        title = f"{name} ({src})"
        new_file, new = _body(fn)
        if target is None:
            out += _file_block(None, new_file, _hunks([], new, title + ", not modelled"))
            continue
        old_file, old = _body(target.impl)
        new = _respell(new, fn, getattr(target.impl, "__globals__", {}))
        hunks = _hunks(old, new, title)
        if hunks:
            out += _file_block(old_file, new_file, hunks)

    for name, fn, source in _added(patch, mod):
        shown.add(id(fn))
        new_file, new = _body(fn)
        out += _file_block(None, new_file, _hunks([], new, f"{name} ({source}, new)"))

    if mod is not None:
        for name, obj in _helpers(mod):
            if id(obj) in shown:
                continue
            try:
                new_file, new = _body(obj)
            except (OSError, TypeError):
                continue
            out += _file_block(None, new_file, _hunks([], new, f"{name} (model helper)"))

    if patch.fields:
        hunk = []
        for obj, attr, value in patch.fields:
            old = getattr(obj, attr, None)
            hunk += [f"-{obj_name(obj)}.{attr} = {value_name(old)}",
                     f"+{obj_name(obj)}.{attr} = {value_name(value)}"]
        n = len(patch.fields)
        where = _path(mod.__file__) if mod is not None and mod.__file__ else patch.name
        out += ["--- a/model objects", f"+++ b/model objects (set by {where})",
                f"@@ -1,{n} +1,{n} @@ patch.set", *hunk]
    return "\n".join(out) + "\n" if out else ""


def _added(patch: Patch, mod) -> list[tuple[str, object, str]]:
    """The kernel functions the design adds: (name, body, kernel source), in the order
    of its file."""
    found: dict[int, tuple[str, object, str]] = {}
    for d in patch.new.values():
        found[id(d.fn)] = (d.name, d.fn, d.source)
    if mod is not None:
        for obj in vars(mod).values():
            impl = getattr(obj, "impl", None)
            if getattr(obj, "kernel_name", None) and getattr(impl, "__module__", None) \
                    == mod.__name__:
                found.setdefault(id(impl), (obj.kernel_name, impl, obj.kernel_source))
    return sorted(found.values(), key=lambda x: _line(x[1]))


def _helpers(mod) -> list[tuple[str, object]]:
    """Functions and classes the design's file defines besides kernel functions."""
    out = []
    for name, obj in vars(mod).items():
        if isinstance(obj, (types.FunctionType, type)) and \
                getattr(obj, "__module__", None) == mod.__name__ and \
                not hasattr(obj, "kernel_name"):
            out.append((name, obj))
    return sorted(out, key=lambda x: _line(x[1]))


def _line(obj) -> int:
    try:
        return inspect.getsourcelines(inspect.unwrap(obj))[1]
    except (OSError, TypeError):
        return 0


__all__ = ["design_diff", "module_of", "obj_name", "value_name"]
