"""The modelled kernel's function decorator and registry, and the way to its state.

``kernel()`` is the running execution's ``Kernel`` (kernel/state.py: everything per
execution), which the scenario that runs the execution owns.  The shared-field accesses
are include/rwonce.py, the atomic bitops include/bitops.py.

``@kfunc("path/file.c")`` marks a modelled kernel function: the name is pushed on the
running task's call stack for the whole call (so reports show real call traces), and a
call whose coroutine is never awaited is an error instead of a silent no-op.
"""

from __future__ import annotations

import functools

from ...engine import current_execution, current_task


def kernel():
    """The running execution's kernel (``state.Kernel``)."""
    return current_execution().program.kernel


# The model's kernel functions by name: function name -> source file, for WARNING lines,
# and -> its kfunc wrapper, for patches to override.  A design's new functions enter
# both only while the design is applied (patching.applied).
SOURCES: dict[str, str] = {}
REGISTRY: dict[str, object] = {}


def kernel_function(fn, source: str, inline: bool = False):
    """``fn`` as a modelled kernel function (see ``kfunc``), registered nowhere: a
    design's new functions are made here and live in the design's own namespace
    (``Patch.new_function``)."""
    name = fn.__name__

    # Every call goes through here, once per modelled call, and ``framed`` is one more
    # level of the await chain that each step resumes: keep both lean.  The body is
    # looked up at call time (patches swap ``call.impl`` around a whole exploration,
    # never during a call).
    async def framed(impl, args, kw):
        frames = current_task().frames
        frames.append(name)
        try:
            return await impl(*args, **kw)
        finally:
            frames.pop()
    framed.__qualname__ = fn.__qualname__   # what "created but never awaited" names

    if inline:
        @functools.wraps(fn)
        def call(*args, **kw):
            coro = call.impl(*args, **kw)     # no frame: no wrapper level either
            current_execution().track(coro)
            return coro
    else:
        @functools.wraps(fn)
        def call(*args, **kw):
            coro = framed(call.impl, args, kw)
            current_execution().track(coro)
            return coro

    call.impl = fn
    call.kernel_source = source
    call.kernel_name = name
    return call


# Frames a report looks past to name the code that called a lock, as lockdep's "at:"
# does: the detectors' own (plain functions, not kfuncs) and every locking primitive's,
# which declares itself (``@kfunc(..., primitive=True)`` adds its name here).
PRIMITIVE_FRAMES: set[str] = {"__might_resched", "__might_sleep", "__schedule_bug", "__warn"}


def kfunc(source: str, inline: bool = False, primitive: bool = False):
    """Decorator for a modelled kernel function; ``source`` names its file in the tree.
    ``inline`` marks an __always_inline function: it does not appear in call traces, as
    in the kernel's.  ``primitive`` marks a locking primitive's function (the lock and
    unlock entry points and their slow paths): a report names the first frame past it,
    its caller (``PRIMITIVE_FRAMES``).  The body actually run is ``call.impl``, which a
    patch may replace (by name: the function is registered in ``REGISTRY``).
    """
    def deco(fn):
        call = kernel_function(fn, source, inline)
        REGISTRY[fn.__name__] = call
        SOURCES[fn.__name__] = source
        if primitive:
            PRIMITIVE_FRAMES.add(fn.__name__)
        return call
    return deco


def culprit(trace: list[str], default: str = "") -> str:
    """The innermost frame that is not a detector or a locking primitive."""
    for fn in trace:
        if fn not in PRIMITIVE_FRAMES:
            return fn
    return trace[0] if trace else default


def patchable(source: str):
    """Decorator for a modelled kernel function that is plain code (runs at set-up or has
    no visible op), so that a patch can replace it by name like a kfunc."""
    def deco(fn):
        @functools.wraps(fn)
        def call(*args, **kw):
            return call.impl(*args, **kw)

        call.impl = fn
        call.kernel_source = source
        SOURCES[fn.__name__] = source
        REGISTRY[fn.__name__] = call
        return call
    return deco


def call_trace() -> list[str]:
    """The running task's modelled call chain, innermost first."""
    return list(reversed(current_task().frames))
