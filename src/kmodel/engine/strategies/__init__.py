"""Search strategies.  Each explores a program's executions and returns a Result."""

from .dpor import Dpor
from .naive import Naive
from .pct import Pct
from .random import RandomWalk
from .replay import Replay

__all__ = ["Dpor", "Naive", "Pct", "RandomWalk", "Replay"]
