"""Small kernel programs for the engine and primitive tests."""

from __future__ import annotations

from kmodel.engine import Limits
from kmodel.engine.strategies import Dpor, Naive
from kmodel.linux.config import PRESETS
from kmodel.linux.kernel.core import kfunc
from kmodel.scenarios.base import KernelProgram


class Snippet(KernelProgram):
    """Tasks given as async functions of the program; ``setup`` builds shared objects."""

    def __init__(self, preset: str, tasks: dict, setup=None, arch: str = "x86"):
        super().__init__(PRESETS[preset], arch)
        self._tasks = tasks
        self._setup = setup

    def build(self):
        if self._setup:
            self._setup(self)

    def tasks(self):
        return [(name, fn, {}) for name, fn in self._tasks.items()]


def explore(preset, tasks, setup=None, strategy=None, **limits):
    strategy = strategy or Dpor()
    return strategy.explore(lambda: Snippet(preset, tasks, setup), Limits(**limits))


def kinds(result):
    return sorted({r.kind for r in result.reports})


def named(fn):
    """Wrap a test task body as a modelled kernel function, so it shows in traces."""
    return kfunc("tests")(fn)
