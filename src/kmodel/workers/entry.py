"""What runs in a worker process: the model built once per spec, one work item at a
time, and the stop and hungry flags the coordinator sets."""

from __future__ import annotations

import os
import pickle
import signal

from ..build import prepare
from ..engine.partition import run_item
from ..patching import applied

_STOP = None                      # multiprocessing.Events in local workers
_HUNGRY = None
_MODELS: dict = {}


def default_jobs() -> int:
    return os.cpu_count() or 1


def _model_key(spec) -> tuple:
    return (tuple(spec.patches), spec.preset, tuple(sorted(spec.config.items())),
            spec.arch, spec.scenario, tuple(sorted(spec.knobs.items())))


def _model(spec):
    """The model of a spec, built once per worker process."""
    key = _model_key(spec)
    hit = _MODELS.get(key)
    if hit is None:
        hit = _MODELS[key] = prepare(spec)
    return hit


def in_local_worker() -> bool:
    """Running in a local worker process (which a coordinator can ask to stop)."""
    return _STOP is not None


def stop_requested() -> bool:
    return _STOP is not None and _STOP.is_set()


def init_local(stop, hungry) -> None:
    """Local worker start-up: Ctrl-C is the coordinator's to handle (it asks the workers
    to stop through ``stop``); ``hungry`` (or None) is set while workers wait for work."""
    global _STOP, _HUNGRY
    _STOP = stop
    _HUNGRY = hungry
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def work(payload: bytes):
    """Run one work item: ``payload`` is the pickled (CheckSpec, item)."""
    spec, item = pickle.loads(payload)
    model = _model(spec)
    with applied(model.patches):
        return run_item(model.factory, item,
                        stop_requested if _STOP is not None else None,
                        _HUNGRY.is_set if _HUNGRY is not None else None)


__all__ = ["work", "init_local", "stop_requested", "in_local_worker", "default_jobs"]
