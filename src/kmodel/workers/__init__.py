"""Workers: every core by default, and a Ray cluster when one machine is not enough.

kmodel does not run its own distributed system.  Work runs in one of two *backends*
(``pool``):

- ``local.LocalBackend``: a pool of processes on this machine (``concurrent.futures``
  with the ``spawn`` start method), as many as ``--jobs`` (default: every core);
- ``ray.RayBackend``: Ray tasks on an existing cluster (``--ray auto`` or ``--ray
  ADDRESS``, ``pip install 'kmodel[ray]'``), as many at once as the cluster has CPUs (or
  ``--jobs``).

Two kinds of work run there:

- many whole checks (``batch.run_checks``; ``kmodel matrix``): each check is
  independent; they run one per worker, and the caller assembles the results in its
  order;
- one search, partitioned (``partitioned.Engines``; ``kmodel check``): DPOR into
  subtrees handed out as work items (``kmodel.engine.partition``), random walks and PCT
  into ranges of runs.  ``Engines`` gives ``strategies.explore`` partitioned strategies
  in place of the sequential ones, so every strategy composes as it does sequentially.
  Bounded search (and the bounded phase of the default strategy) and ``naive`` (a
  yardstick) run in this process: what bounded search explores depends on its order.
  See ``kmodel.engine.partition`` for what is identical to the sequential run: for DPOR
  the verdict, the set of classes (and their count) and the set of reports, not the
  executions; for random walks and PCT, everything.

A worker rebuilds the model from the check's ``CheckSpec`` (``entry``: designs, preset,
config, arch, scenario, knobs): only the spec and the work item travel, never model
objects.
"""

from __future__ import annotations

from .backend import pool
from .batch import run_checks
from .entry import default_jobs
from .local import LocalBackend
from .partitioned import Engines
from .ray import RayBackend


__all__ = ["pool", "run_checks", "Engines", "LocalBackend", "RayBackend", "default_jobs"]
