"""The backend for ``--jobs`` / ``--ray``."""

from __future__ import annotations

from .local import LocalBackend
from .ray import RayBackend


def pool(spec=None, jobs: int | None = None, ray: str | None = None):
    """Ray tasks on the cluster ``ray`` names, else ``jobs`` local processes; ``spec`` is
    the check whose work items it runs (None for whole checks)."""
    return RayBackend(spec, ray, jobs) if ray else LocalBackend(spec, jobs)


__all__ = ["pool"]
