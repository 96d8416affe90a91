"""Many whole checks at once (the matrix), one per worker."""

from __future__ import annotations

from concurrent import futures as cf

from .backend import pool


def run_checks(run, specs: list, jobs: int | None = None, ray: str | None = None,
               on_start=None, on_done=None) -> dict:
    """``run(spec)`` for each of ``specs`` in parallel: returns {index: outcome}.
    ``run`` is a module-level function (it travels to the workers by name) returning an
    outcome tuple whose first item is "ok", "error", "bad" or "interrupted"; a worker
    that dies gives ("error", exception, message, 0.0) and a check that Ctrl-C stopped
    ("interrupted",).  ``on_start(i)`` and ``on_done(i, outcome)`` are called as checks
    are handed out and finish (in any order).  Ctrl-C stops the running checks (they
    return what they found, marked interrupted) and hands out no more."""
    backend = pool(None, jobs, ray)
    out: dict = {}
    todo = list(range(len(specs)))
    todo.reverse()
    inflight: dict = {}
    stopping = False
    try:
        while todo or inflight:
            try:
                while todo and len(inflight) < backend.slots and not stopping:
                    i = todo.pop()
                    if on_start:
                        on_start(i)
                    inflight[backend.submit_call(run, specs[i])] = i
                if not inflight:
                    break
                for h in backend.wait(list(inflight), 0.5):
                    i = inflight.pop(h)
                    try:
                        out[i] = backend.result(h)
                    except cf.CancelledError:
                        out[i] = ("interrupted",)
                    except Exception as e:          # a worker died, or Ray cancelled
                        if stopping:
                            out[i] = ("interrupted",)
                        else:
                            out[i] = ("error", e, f"{type(e).__name__}: {e}", 0.0)
                    if on_done:
                        on_done(i, out[i])
            except KeyboardInterrupt:
                if stopping:
                    raise
                stopping = True
                backend.stop(list(inflight))
                for i in todo:
                    out[i] = ("interrupted",)
                todo = []
    finally:
        backend.close()
    return out


__all__ = ["run_checks"]
