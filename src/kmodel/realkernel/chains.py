"""The model's call chains: run the model over a scenario and record, at every call of a
modelled kernel function, the calling task and its call stack.

Nothing here is a table of expected chains: the chains are what the model's own code
does, read off its ``@kfunc`` call stacks (``Task.frames``) while it runs.  Each
registered function's body (``call.impl``, the same hook patches use) is wrapped for the
duration of the runs and restored afterwards.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager

from ..engine import current_task


@contextmanager
def recording(sink: set):
    """While inside, every call of a registered model function adds (task name, chain
    outermost first) to ``sink``.  A plain (non-coroutine) function does not push a
    frame of its own, so its name is appended."""
    saved = []
    for call in _model_functions():
        saved.append((call, call.impl))
        call.impl = _recorder(call.kernel_name, call.impl, sink)
    try:
        yield sink
    finally:
        for call, impl in saved:
            call.impl = impl


def _model_functions() -> list:
    """Every @kfunc / @patchable function of the model's modules.  REGISTRY keeps one
    function per name, but the arches define the same names (x86's and arm64's
    kvm_arch_flush_shadow_memslot): read the modules themselves."""
    import importlib
    import pkgutil
    import sys
    from .. import linux
    for info in pkgutil.walk_packages(linux.__path__, "kmodel.linux."):
        importlib.import_module(info.name)       # the arches are imported lazily
    out, seen = [], set()
    for modname, mod in sorted(sys.modules.items()):
        if not modname.startswith("kmodel.linux") or mod is None:
            continue
        for value in list(vars(mod).values()):
            if hasattr(value, "impl") and hasattr(value, "kernel_source") \
                    and id(value) not in seen:
                seen.add(id(value))
                if not hasattr(value, "kernel_name"):
                    value.kernel_name = value.__name__
                out.append(value)
    return out


def _recorder(name, impl, sink):
    if inspect.iscoroutinefunction(impl):
        async def rec(*a, **kw):
            t = current_task()
            sink.add((t.name, tuple(t.frames)))
            return await impl(*a, **kw)
    else:
        def rec(*a, **kw):
            try:
                t = current_task()
            except RuntimeError:            # set-up code, outside any task
                return impl(*a, **kw)
            sink.add((t.name, tuple(t.frames) + (name,)))
            return impl(*a, **kw)
    rec.__name__ = getattr(impl, "__name__", name)
    return rec


def model_run(scenario: str, knobs: dict | None = None, preset: str = "nonrt",
              runs: int = 24, record: dict | None = None):
    """(chains, reports): ``chains`` maps a task name to the set of its chains (tuples,
    outermost first) over ``runs`` seeded random walks of the scenario on the upstream
    model with ``preset`` (or over the one execution of ``record``, a replay record);
    ``reports`` lists the model's distinct reports, (kind, title, trace).  Chains of
    both values of the populated knob are included: the reproducer's guest runs once
    during set-up, which the model's populated initial state stands for."""
    from .. import api
    sink: set = set()
    reports: dict = {}
    with recording(sink):
        if record is not None:
            results = [api.replay(record, check_report=False)]
        else:
            results = []
            for populated in (True, False):
                k = {**(knobs or {}), "populated": populated}
                spec = api.CheckSpec(patches=["upstream"], preset=preset, arch="x86",
                                     scenario=scenario, knobs=k, strategy="random",
                                     runs=runs, seed=0, shrink=False)
                results.append(api.run_check(spec, jobs=1))
    for cr in results:
        for r in cr.result.reports:
            reports.setdefault((r.kind, r.title), (r.kind, r.title, list(r.trace)))
    out: dict = {}
    for task, chain in sink:
        out.setdefault(task, set()).add(chain)
    return out, list(reports.values())
