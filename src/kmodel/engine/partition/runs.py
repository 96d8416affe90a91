"""Random walks and PCT split by run index: run ``i`` uses seed ``seed + i`` wherever it
runs, so the merged result is the sequential one."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..explore import Limits, Result
from .coordinator import Backend
from .items import PartResult, RandomItem, fold, random_label


def explore_random(backend: Backend, runs: int, seed: int, limits: Limits, *,
                   depth: int | None = None, chunk: int | None = None,
                   progress: Callable | None = None) -> Result:
    """``RandomWalk(runs, seed)`` (or ``Pct(runs, depth, seed)``) split into ranges of
    runs; the merged result is the sequential one (the first report in run order wins
    under ``stop_on_first``)."""
    t0 = time.perf_counter()
    if limits.max_executions is not None:
        runs = min(runs, limits.max_executions)
    if chunk is None:
        chunk = max(1, -(-runs // (4 * max(1, backend.slots))))
    starts = list(range(0, runs, chunk))
    deadline = None if limits.time_limit is None else t0 + limits.time_limit
    todo = [RandomItem(i, s, min(chunk, runs - s), seed, limits.max_steps,
                       limits.detect_races, limits.stop_on_first, depth=depth)
            for i, s in enumerate(starts)]
    todo.reverse()
    inflight: dict = {}
    parts: dict[int, PartResult] = {}
    best = None
    limited = interrupted = False
    nexec = 0
    keys: set = set()
    try:
        while todo or inflight:
            if deadline is not None and time.perf_counter() >= deadline:
                limited = True
            while todo and len(inflight) < max(1, backend.slots) and not limited:
                it = todo.pop()
                if best is not None and it.start > best:
                    continue
                if deadline is not None:
                    it.budget_s = max(0.01, deadline - time.perf_counter())
                inflight[backend.submit(it)] = it
            if not inflight:
                break
            for h in backend.wait(list(inflight), 0.5):
                it = inflight.pop(h)
                part = backend.result(h)
                parts[it.start] = part
                nexec += part.executions
                keys.update(r.key() for _, r in part.reports)
                if progress is not None:
                    progress(nexec, len(keys))
                if part.interrupted:
                    raise KeyboardInterrupt
                if part.reports and limits.stop_on_first and (best is None or
                                                              it.start < best):
                    best = it.start
    except KeyboardInterrupt:
        interrupted = True
        backend.stop(list(inflight))
    res = Result(random_label(depth))
    fps: set = set()
    seen: set = set()
    for start in sorted(parts):
        if best is not None and start > best:
            break
        part = parts[start]
        fold(res, part, fps, seen, time.perf_counter() - t0)
        if not part.finished:
            break                       # a gap: later ranges would not be sequential
    res.classes = len(fps)
    res.complete = False
    res.interrupted = interrupted
    res.elapsed_s = time.perf_counter() - t0
    return res
