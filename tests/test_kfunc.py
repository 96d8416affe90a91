"""The @kfunc wrapper: call traces and never-awaited calls."""

from __future__ import annotations

import pytest
from helpers import Snippet

from kmodel.engine import Limits, ModelError
from kmodel.engine.strategies import Dpor
from kmodel.linux.include import rwonce
from kmodel.linux.kernel.core import call_trace, kfunc


@kfunc("tests/inner.c", inline=True)
async def always_inline_helper(p):
    p.traces.append(call_trace())
    await rwonce.WRITE_ONCE(p, "x", 1)


@kfunc("tests/inner.c")
async def inner_function(p):
    await always_inline_helper(p)
    p.traces.append(call_trace())


@kfunc("tests/outer.c")
async def outer_function(p):
    await inner_function(p)
    p.traces.append(call_trace())


@kfunc("tests/outer.c")
async def forgets_to_await(p):
    inner_function(p)                   # the bug: a call without await
    await rwonce.WRITE_ONCE(p, "x", 2)


def _setup(p):
    p.x = 0
    p.traces = []


def test_call_trace_names_kfuncs_innermost_first_and_skips_inline_ones():
    seen = []

    class Keep(Snippet):
        def at_end(self, ex):
            seen.append(list(self.traces))

    res = Dpor().explore(lambda: Keep("rt", {"t": outer_function}, _setup), Limits())
    assert res.complete and res.executions == 1
    assert seen == [[["inner_function", "outer_function"],
                     ["inner_function", "outer_function"],
                     ["outer_function"]]]


def test_a_kfunc_call_never_awaited_is_a_model_error_naming_the_function():
    with pytest.raises(ModelError, match=r"coroutine inner_function\(\) created but never "
                                         r"awaited \(task t, in forgets_to_await\)"):
        Dpor().explore(lambda: Snippet("rt", {"t": forgets_to_await}, _setup), Limits())
