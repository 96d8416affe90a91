"""Moved to ``kmodel.engine.partition`` (split by job); this name stays until the
application imports from there."""

from .partition import (Backend, OpStub, PartDpor, Partitioned, PartResult, RandomItem,
                        SliceCollector, WorkItem, explore_random, run_item)

__all__ = ["WorkItem", "RandomItem", "PartResult", "PartDpor", "Partitioned", "Backend",
           "OpStub", "SliceCollector", "run_item", "explore_random"]
