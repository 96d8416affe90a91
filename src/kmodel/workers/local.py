"""Work on this machine: a pool of ``spawn``ed processes."""

from __future__ import annotations

import multiprocessing as mp
import pickle
from concurrent import futures as cf

from .entry import default_jobs, init_local, work

# Local workers go on past a slice (``partitioned.SLICE_S``) until the coordinator says
# that workers wait for work (fewer, longer work items); False: they stop at the slice's
# end, as Ray tasks do.
SPLIT_WHEN_IDLE = True


class LocalBackend:
    """Work items in a pool of ``jobs`` processes on this machine, started on first use
    (a check that ends within its first, in-process slice starts none)."""

    def __init__(self, spec=None, jobs: int | None = None):
        self.spec = spec
        self.slots = max(1, jobs or default_jobs())
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._hungry = self._ctx.Event() if SPLIT_WHEN_IDLE else None
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.slots, mp_context=self._ctx,
                                                initializer=init_local,
                                                initargs=(self._stop, self._hungry))
        return self._pool

    def hungry(self, flag: bool) -> None:
        if self._hungry is not None and flag != self._hungry.is_set():
            (self._hungry.set if flag else self._hungry.clear)()

    def submit(self, item):
        return self._ensure().submit(work, pickle.dumps((self.spec, item)))

    def submit_call(self, fn, *args):
        return self._ensure().submit(fn, *args)

    def wait(self, handles: list, timeout: float | None) -> list:
        done, _ = cf.wait(handles, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return list(done)

    def result(self, handle):
        try:
            return handle.result()
        except cf.process.BrokenProcessPool as e:
            raise RuntimeError(
                "a kmodel worker process died; from a Python script, call kmodel under "
                "`if __name__ == '__main__':` (workers are started with 'spawn', which "
                "imports the main module)") from e

    def stop(self, handles: list) -> None:
        self._stop.set()
        for h in handles:
            h.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


__all__ = ["LocalBackend", "SPLIT_WHEN_IDLE"]
