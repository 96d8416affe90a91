"""Scaling out: every core by default, and a Ray cluster when one machine is not enough.

kmodel does not run its own distributed system.  Work runs in one of two *backends*:

- ``LocalBackend``: a pool of processes on this machine (``concurrent.futures`` with the
  ``spawn`` start method), as many as ``--jobs`` (default: every core);
- ``RayBackend``: Ray tasks on an existing cluster (``--ray auto`` or ``--ray ADDRESS``,
  ``pip install 'kmodel[ray]'``), as many at once as the cluster has CPUs (or ``--jobs``).

Two kinds of work run there:

- ``kmodel matrix``: each design x preset x arch x scenario check is independent; the
  checks run one per worker and the rows are assembled in the sequential order, equal to
  the sequential rows except for the times (``run_checks``);
- ``kmodel check``: one search is partitioned (``kmodel.engine.parallel``): DPOR into
  subtrees handed out as work items, random walks and PCT into ranges of runs.
  ``Engines`` gives ``api._explore`` partitioned strategies in place of the sequential
  ones, so every strategy composes as it does sequentially.  Bounded search (and the
  bounded phase of the default strategy) and ``naive`` (a yardstick) run in this process:
  what bounded search explores depends on its order.  See ``kmodel.engine.parallel`` for
  what is identical to the sequential run: for DPOR the verdict, the set of classes (and
  their count) and the set of reports, not the executions; for random walks and PCT,
  everything.

A worker rebuilds the model from the check's ``CheckSpec`` (designs, preset, config,
arch, scenario, knobs): only the spec and the work item travel, never model objects.
"""

from __future__ import annotations

import os
import pickle
import time
from concurrent import futures as cf

from .engine import Limits
from .engine.parallel import Partitioned, explore_random, run_item
from .engine.strategies import Dpor, Naive

# -- in a worker process ----------------------------------------------------------------

# How long a DPOR work item runs before it hands back its frontier (seconds).  The first
# slice runs in this process: a search that ends within it never starts a worker.
SLICE_S = 0.5
FIRST_SLICE_S = 0.25

# Local workers go on past SLICE_S until the coordinator says that workers wait for work
# (fewer, longer work items); False: they stop at SLICE_S, as Ray tasks do.
SPLIT_WHEN_IDLE = True

_STOP = None                      # multiprocessing.Events in local workers
_HUNGRY = None
_MODELS: dict = {}


def _model_key(spec) -> tuple:
    return (tuple(spec.patches), spec.preset, tuple(sorted(spec.config.items())),
            spec.arch, spec.scenario, tuple(sorted(spec.knobs.items())))


def _model(spec):
    """The patches and the scenario factory of a spec, built once per worker process."""
    key = _model_key(spec)
    hit = _MODELS.get(key)
    if hit is None:
        from . import api, scenarios
        config, sdef, patches = api._prepare(spec)
        fac = scenarios.factory(sdef, config, spec.arch, spec.knobs)
        hit = _MODELS[key] = (patches, fac)
    return hit


def _stop_requested() -> bool:
    return _STOP is not None and _STOP.is_set()


def _init_local(stop, hungry) -> None:
    """Local worker start-up: Ctrl-C is the coordinator's to handle (it asks the workers
    to stop through ``stop``); ``hungry`` (or None) is set while workers wait for work."""
    import signal
    global _STOP, _HUNGRY
    _STOP = stop
    _HUNGRY = hungry
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def work(payload: bytes):
    """Run one work item: ``payload`` is the pickled (CheckSpec, item)."""
    from .patching import applied
    spec, item = pickle.loads(payload)
    patches, fac = _model(spec)
    with applied(patches):
        return run_item(fac, item, _stop_requested if _STOP is not None else None,
                        _HUNGRY.is_set if _HUNGRY is not None else None)


def check_cell(spec):
    """Run one whole check (a matrix cell), as ``matrix._run_one`` does: ("ok",
    CheckResult), ("error", exception, one-line message, seconds) for a check that
    crashed, ("bad", BadInput, message) or ("interrupted",)."""
    from . import api
    from .matrix import where

    def progress(_state):
        if _stop_requested():
            raise KeyboardInterrupt

    t0 = time.perf_counter()
    try:
        return ("ok", api.run_check(spec, progress=progress if _STOP is not None else None))
    except KeyboardInterrupt:
        return ("interrupted",)
    except api.BadInput as e:
        return ("bad", e, str(e))
    except Exception as e:                      # the model or a design crashed
        msg = f"{type(e).__name__}: {e}{where(e)}"
        try:
            pickle.loads(pickle.dumps(e))
        except Exception:
            e = RuntimeError(msg)
        return ("error", e, msg, time.perf_counter() - t0)


# -- backends ---------------------------------------------------------------------------

def default_jobs() -> int:
    return os.cpu_count() or 1


class LocalBackend:
    """Work items in a pool of ``jobs`` processes on this machine, started on first use
    (a check that ends within its first, in-process slice starts none)."""

    def __init__(self, spec=None, jobs: int | None = None):
        import multiprocessing as mp
        self.spec = spec
        self.slots = max(1, jobs or default_jobs())
        self._ctx = mp.get_context("spawn")
        self._stop = self._ctx.Event()
        self._hungry = self._ctx.Event() if SPLIT_WHEN_IDLE else None
        self._pool: cf.ProcessPoolExecutor | None = None

    def _ensure(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = cf.ProcessPoolExecutor(self.slots, mp_context=self._ctx,
                                                initializer=_init_local,
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


class RayBackend:
    """Work items as Ray tasks on a running cluster: ``address`` is what
    ``ray.init(address=...)`` takes ("auto": the cluster this machine belongs to;
    "ray://host:10001"; "host:6379").  If this process already called ``ray.init``, that
    connection is used.  kmodel itself is shipped to the workers (``py_modules``)."""

    def __init__(self, spec=None, address: str = "auto", jobs: int | None = None):
        try:
            import ray
        except ImportError:
            from .api import BadInput
            raise BadInput("--ray needs Ray: pip install 'kmodel[ray]'") from None
        self.ray = ray
        self.spec = spec
        if not ray.is_initialized():
            import logging

            import kmodel
            _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False,
                         logging_level=logging.ERROR,
                         runtime_env={"py_modules": [os.path.dirname(kmodel.__file__)]})
            except (ConnectionError, ValueError, RuntimeError) as e:
                from .api import BadInput
                raise BadInput(f"--ray {address}: cannot connect to a Ray cluster: "
                               f"{str(e).splitlines()[0]}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, jobs or cpus)
        self._work = ray.remote(work)
        self._cell = ray.remote(check_cell)

    def submit(self, item):
        return self._work.remote(pickle.dumps((self.spec, item)))

    def submit_call(self, fn, *args):
        if fn is check_cell:
            return self._cell.remote(*args)
        return self.ray.remote(fn).remote(*args)

    def wait(self, handles: list, timeout: float | None) -> list:
        ready, rest = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        return ready

    def result(self, handle):
        return self.ray.get(handle)

    def stop(self, handles: list) -> None:
        for h in handles:
            try:
                self.ray.cancel(h)
            except Exception:
                pass

    def close(self) -> None:
        pass                            # the cluster is not ours to stop


def _reachable(address: str, timeout: float = 10.0) -> None:
    """Fail in one line on a cluster address nothing listens on (Ray itself would keep
    retrying): "host:port" and "ray://host:port" are tried with a TCP connection."""
    import socket
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        from .api import BadInput
        raise BadInput(f"--ray {address}: cannot connect to a Ray cluster there: "
                       f"{e.strerror or e}") from None


def backend(spec=None, jobs: int | None = None, ray: str | None = None):
    return RayBackend(spec, ray, jobs) if ray else LocalBackend(spec, jobs)


# -- one check, partitioned -------------------------------------------------------------

class Engines:
    """The strategies ``api._explore`` composes, partitioned over a backend: ``dpor()``,
    ``random()``, ``pct()``; bounded ``dpor(k)`` and ``naive()`` run in this process.
    ``progress`` (an ``api.Progress`` consumer) sees the executions and distinct reports
    as work items finish."""

    def __init__(self, spec, jobs: int | None = None, ray: str | None = None,
                 progress=None, slice_s: float | None = None,
                 first_slice_s: float | None = None):
        from .api import Progress
        self.backend = backend(spec, jobs, ray)
        self.progress = progress
        self.state = Progress()
        self.slice_s = SLICE_S if slice_s is None else slice_s
        self.first_slice_s = FIRST_SLICE_S if first_slice_s is None else first_slice_s
        self.stats: list = []           # per DPOR phase: Partitioned.stats
        self._base = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.backend.close()
        return False

    def _tick(self, executions: int, reports: int) -> None:
        if self.progress is not None:
            self.state.executions = self._base + executions
            self.state.reports = max(self.state.reports, reports)
            self.progress(self.state)

    def dpor(self, preemption_bound: int | None = None):
        if preemption_bound is not None:
            return _InProcess(self, Dpor(preemption_bound=preemption_bound))
        return _PartitionedDpor(self)

    def random(self, runs: int, seed: int):
        return _PartitionedRandom(self, runs, seed)

    def pct(self, runs: int, depth: int, seed: int):
        return _PartitionedRandom(self, runs, seed, depth)

    def naive(self):
        return _InProcess(self, Naive())


class _InProcess:
    """A sequential strategy run here, its executions counted in the progress."""

    def __init__(self, eng: Engines, strategy):
        self.eng = eng
        self.strategy = strategy

    def explore(self, factory, limits: Limits):
        eng = self.eng
        n = [0]

        def make():
            if n[0]:
                eng._tick(n[0], 0)
            n[0] += 1
            return factory()

        res = self.strategy.explore(make, limits)
        eng._tick(res.executions, len(res.reports))
        eng._base += res.executions
        return res


class _PartitionedDpor:
    def __init__(self, eng: Engines):
        self.eng = eng

    def explore(self, factory, limits: Limits):
        eng = self.eng
        part = Partitioned(eng.backend, slice_s=eng.slice_s,
                           first_slice_s=eng.first_slice_s,
                           first=lambda item: run_item(factory, item),
                           progress=eng._tick)
        res = part.explore(limits)
        eng.stats.append(part.stats)
        eng._base += res.executions
        return res


class _PartitionedRandom:
    def __init__(self, eng: Engines, runs: int, seed: int, depth: int | None = None):
        self.eng = eng
        self.runs = runs
        self.seed = seed
        self.depth = depth

    def explore(self, factory, limits: Limits):
        eng = self.eng
        res = explore_random(eng.backend, self.runs, self.seed, limits, depth=self.depth,
                             progress=eng._tick)
        eng._base += res.executions
        return res


# -- many checks (the matrix) -----------------------------------------------------------

def run_checks(specs: list, jobs: int | None = None, ray: str | None = None,
               on_start=None, on_done=None) -> dict:
    """Run whole checks in parallel: returns {index: outcome} where an outcome is
    ("ok", CheckResult), ("error", exception, message), ("bad", BadInput, message) or
    ("interrupted",).  ``on_start(i)`` and ``on_done(i, outcome)`` are called as checks
    are handed out and finish (in any order).  Ctrl-C stops the running checks (they
    return what they found, marked interrupted) and hands out no more."""
    be = backend(None, jobs, ray)
    out: dict = {}
    todo = list(range(len(specs)))
    todo.reverse()
    inflight: dict = {}
    stopping = False
    try:
        while todo or inflight:
            try:
                while todo and len(inflight) < be.slots and not stopping:
                    i = todo.pop()
                    if on_start:
                        on_start(i)
                    inflight[be.submit_call(check_cell, specs[i])] = i
                if not inflight:
                    break
                for h in be.wait(list(inflight), 0.5):
                    i = inflight.pop(h)
                    try:
                        out[i] = be.result(h)
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
                be.stop(list(inflight))
                for i in todo:
                    out[i] = ("interrupted",)
                todo = []
    finally:
        be.close()
    return out


__all__ = ["LocalBackend", "RayBackend", "Engines", "backend", "run_checks", "work",
           "check_cell", "default_jobs"]
