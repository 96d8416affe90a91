"""Designs as patches over the model.

A patch file creates ``patch = Patch(...)`` with the design's title, author and date in the
thread, then overrides modelled kernel functions by name, adds new ones, and sets fields
of model objects (an ops table entry, a lock type made in kvm_create_vm).  Patches are
applied for the duration of one check and undone afterwards; they compose in the order
given.

    from kmodel.patching import Patch
    patch = Patch(name="my-design", title="...", author="...", date="2026-05-01")

    @patch.override("kvm_mmu_notifier_invalidate_range_start")
    async def kvm_mmu_notifier_invalidate_range_start(sub, range_):
        ...

A function the design adds is defined with ``@patch.new_function(source)``; one that the
design declares in a header only under a Kconfig symbol with
``@patch.new_function(source, config="MMU_NOTIFIER", stub=False)``: calling it from a file
that is built without that symbol is a build error, found before any exploration.

A design's new functions are its own: they live in ``patch.new``, not in the model's
registry of kernel functions, so two designs can each add a function of the same name
(several add ``mmu_notifier_oom_enter``).  While a patch is applied, its new functions
join the registry (a later patch in the same composition may override one, and a
WARNING in one names its source file); two patches applied together that add the same
name are an error, as two definitions would be.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

from .errors import did_you_mean
from .linux.kernel.core import REGISTRY, SOURCES, kernel_function
from .patches import AIDS, ORDER


class PatchError(Exception):
    """A patch that cannot be loaded or applied: one line for the user."""


@dataclass
class Declared:
    """A function a design adds: ``fn`` its body, ``call`` the kernel function (what the
    model calls; its ``impl`` is ``fn``)."""
    name: str
    source: str
    config: str | None
    stub: bool
    fn: object = None
    call: object = None


@dataclass
class Patch:
    name: str
    title: str
    author: str = ""
    date: str = ""
    summary: str = ""
    overrides: dict = field(default_factory=dict)     # name -> new impl
    new: dict = field(default_factory=dict)           # name -> Declared
    fields: list = field(default_factory=list)        # (object, attribute, value)

    def override(self, name: str):
        def deco(fn):
            self.overrides[name] = fn
            return fn
        return deco

    def new_function(self, source: str, config: str | None = None, stub: bool = True,
                     inline: bool = False):
        """Declare and define a function the design adds (listed in ``patch.new``, the
        design's own namespace).  ``config``: declared only with that symbol set (else
        a call to it is a build error, unless ``stub``, the header's empty stub)."""
        def deco(fn):
            call = kernel_function(fn, source, inline=inline)
            self.new[fn.__name__] = Declared(fn.__name__, source, config, stub, fn, call)
            return call
        return deco

    def set(self, obj, attr: str, value) -> None:
        self.fields.append((obj, attr, value))

    def describe(self) -> str:
        who = ", ".join(x for x in (self.author, self.date) if x)
        return f"{self.name}: {self.title}" + (f" ({who})" if who else "")


# Files compiled only when a symbol is set (KVM selects MMU_NOTIFIER).
CONDITIONAL_SOURCES = {
    "mm/mmu_notifier.c": "MMU_NOTIFIER",
    "virt/kvm/": "MMU_NOTIFIER",
    "arch/x86/kvm/": "MMU_NOTIFIER",
    "arch/arm64/kvm/": "MMU_NOTIFIER",
}


def _source_config(source: str) -> str | None:
    for prefix, sym in CONDITIONAL_SOURCES.items():
        if source.startswith(prefix):
            return sym
    return None


def _names(code: types.CodeType) -> set[str]:
    out = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            out |= _names(c)
    return out


def build_errors(patches: list[Patch], config) -> list[str]:
    """Calls from built files to functions that have no declaration in this config: the
    compiler's "implicit declaration of function" errors."""
    declared = {}
    for p in patches:
        declared.update(p.new)
    errors = []
    for p in patches:
        for name, fn, source in \
                [(n, f, declared[n].source if n in declared else
                  getattr(REGISTRY.get(n), "kernel_source", "?"))
                 for n, f in p.overrides.items()] + \
                [(d.name, d.fn, d.source) for d in p.new.values()]:
            src_cfg = _source_config(source)
            if src_cfg and not getattr(config, src_cfg):
                continue                   # this file is not built in this config
            for callee in sorted(_names(fn.__code__)):
                d = declared.get(callee)
                if d is None or d.config is None or getattr(config, d.config) or d.stub:
                    continue
                line = fn.__code__.co_firstlineno
                errors.append(f"{source}:{line}: error: implicit declaration of function "
                              f"'{callee}' [-Werror=implicit-function-declaration] "
                              f"({p.name}: {callee} is declared only with "
                              f"CONFIG_{d.config}=y and has no stub)")
    return errors


class applied:
    """Context manager: the patches' new functions, overrides and fields in force (in
    the order of the patches), undone on exit."""

    def __init__(self, patches: list[Patch]):
        self.patches = patches
        self._undo: list = []

    def _add(self, p: Patch, added: dict) -> None:
        """``p``'s new functions join the registry while it is applied."""
        for name, d in p.new.items():
            owner = added.get(name)
            if owner is not None and owner[1] is not d:
                raise PatchError(f"patches {owner[0]} and {p.name} both add {name}")
            if owner is None and name in REGISTRY:
                raise PatchError(f"patch {p.name} adds {name}, which the model already "
                                 "has: override it instead")
            added[name] = (p.name, d)
            for table, value in ((REGISTRY, d.call), (SOURCES, d.source)):
                self._undo.append((table, name, table.get(name, _MISSING)))
                table[name] = value

    def __enter__(self):
        added: dict = {}
        try:
            for p in self.patches:
                self._add(p, added)
                for name, fn in p.overrides.items():
                    target = REGISTRY.get(name)
                    if target is None:
                        where = f"{fn.__code__.co_filename}:{fn.__code__.co_firstlineno}"
                        raise PatchError(f"{where}: patch {p.name} overrides {name}, which "
                                         "is not a modelled kernel function")
                    self._undo.append((target, "impl", target.impl))
                    target.impl = fn
                for obj, attr, value in p.fields:
                    self._undo.append((obj, attr, getattr(obj, attr, _MISSING)))
                    setattr(obj, attr, value)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for obj, attr, old in reversed(self._undo):
            if isinstance(obj, dict):              # REGISTRY or SOURCES
                if old is _MISSING:
                    del obj[attr]
                else:
                    obj[attr] = old
            elif old is _MISSING:
                delattr(obj, attr)
            else:
                setattr(obj, attr, old)
        self._undo.clear()
        return False


_MISSING = object()


def load(name_or_path: str, earlier: list[Patch] = ()) -> Patch:
    """A built-in design by name, or a user's patch file by path.  ``earlier``: the
    patches applied before it, whose new functions it may override."""
    known = {**ORDER, **AIDS}
    if name_or_path in known:
        mod = importlib.import_module(f"kmodel.patches.{known[name_or_path]}")
        return mod.patch
    path = Path(name_or_path)
    if not path.suffix == ".py" or not path.exists():
        hint = did_you_mean(name_or_path, known)
        raise PatchError(f"unknown design {name_or_path!r}{hint}; built-in designs: "
                         f"{', '.join(known)}; or give the path of a patch file")
    modname = f"kmodel_user_patch_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    try:
        sys.modules[modname] = mod
        spec.loader.exec_module(mod)
    except Exception as e:                     # a user's file: report, never a traceback
        tb = e.__traceback__
        line = "?"
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == str(path):
                line = tb.tb_lineno
            tb = tb.tb_next
        raise PatchError(f"{path}:{line}: patch file failed to load: "
                         f"{type(e).__name__}: {e}") from None
    patch = getattr(mod, "patch", None)
    if not isinstance(patch, Patch):
        raise PatchError(f"{path}: a patch file must define `patch = Patch(...)`")
    added = {n for p in earlier for n in p.new}
    for name, fn in patch.overrides.items():
        if name not in REGISTRY and name not in added:
            raise PatchError(f"{path}:{fn.__code__.co_firstlineno}: patch overrides {name}, "
                             f"which is not a modelled kernel function"
                             + did_you_mean(name, REGISTRY))
    return patch

