"""Work on a Ray cluster (``--ray``; ``pip install 'kmodel[ray]'``).

Ray itself is imported only when a backend is made: kmodel runs without it.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket

from ..errors import BadInput
from .entry import work


class RayBackend:
    """Work items as Ray tasks on a running cluster: ``address`` is what
    ``ray.init(address=...)`` takes ("auto": the cluster this machine belongs to;
    "ray://host:10001"; "host:6379").  If this process already called ``ray.init``, that
    connection is used.  kmodel itself is shipped to the workers (``py_modules``)."""

    def __init__(self, spec=None, address: str = "auto", jobs: int | None = None):
        try:
            import ray      # optional: only --ray needs it
        except ImportError:
            raise BadInput("--ray needs Ray: pip install 'kmodel[ray]'") from None
        self.ray = ray
        self.spec = spec
        if not ray.is_initialized():
            _reachable(address)
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            try:
                ray.init(address=address, log_to_driver=False,
                         logging_level=logging.ERROR,
                         runtime_env={"py_modules": [package]})
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise BadInput(f"--ray {address}: cannot connect to a Ray cluster: "
                               f"{str(e).splitlines()[0]}") from None
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, jobs or cpus)
        self._work = ray.remote(work)
        self._remote: dict = {}             # function -> its Ray remote function

    def submit(self, item):
        return self._work.remote(pickle.dumps((self.spec, item)))

    def submit_call(self, fn, *args):
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self.ray.remote(fn)
        return remote.remote(*args)

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
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        raise BadInput(f"--ray {address}: cannot connect to a Ray cluster there: "
                       f"{e.strerror or e}") from None


__all__ = ["RayBackend"]
