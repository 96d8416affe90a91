"""Partitioned exploration: one search split into work items that run anywhere.

The engine's part of scaling out.  It knows nothing of processes, Ray or Linux: a
*backend* (``Backend``; the application has them) runs work items somewhere and hands
back their results; this package says what a work item is (``items``), how a worker explores one
(``worker``), how a coordinator hands them out and merges what comes back
(``coordinator``, ``runs``), and what travels between processes (``wire``).

DPOR (``Dpor``: optimal DPOR, wakeup trees and sleep sets).  A work item is a subtree of
the search tree: the schedule prefix that reaches its root, the root's sleep set, the
tasks already handed out there (``done``), and the branch to take at the root (a task,
its choice values and the wakeup subtree to follow below it).  A worker explores the
subtree with ``PartDpor``, a ``Dpor`` that replays the prefix and never backtracks above
its root, for a time slice (or, where the backend can say so, until other workers wait
for work).  When the slice ends it hands back its *frontier*: the nodes of its current
path and what is left to explore at each, which the coordinator turns into nodes of its
own and new work items (that is how the work spreads: whichever worker is idle takes the
next item from one queue).  A race whose reversal belongs at a node above the worker's
root is sent back, and the coordinator inserts it there; the worker leaves out what the
coordinator would drop (what a sleeping or handed-out task there starts, as the item
says, and what it sent before).

Why the partitioned search explores every class the sequential one does.  Each work item
is explored completely on its own: the races that lead to the executions below a node
have their reversals at that node or below it, so a subtree's exploration reaches every
class of executions through its root that no task in the root's sleep set starts.  The
coordinator treats its nodes as source-DPOR treats its backtrack sets (Abdulla, Aronis,
Jonsson, Sagonas, POPL 2014): a task counts as explored at a node from the moment its
subtree is handed out, and a reversal that one of the node's explored or sleeping tasks
starts is dropped (that task's subtree covers it, wherever and whenever it runs).  Any
other reversal joins the wakeup tree of the branches not handed out yet, or becomes a new
branch, that is, a new work item.  A subtree is never changed once it is handed out, so
no reversal is lost in a copy a worker no longer reads.

What is identical to the sequential run, and what is not.  The sequential search
explores every class (it is exhaustive), and so does the partitioned one: the same set
of classes, hence the same class count, the same set of report keys and the same
verdict.  The executions are not always the same ones: a subtree handed out early is
explored before a reversal the sequential search would have added to its wakeup tree,
so the subtree finds that class itself, sometimes after an execution that its sleep set
blocks.  Classes are counted by ``Execution.class_hash()``, which is the same in every
process, so the union over work items counts each class once.  Results are merged in
depth-first order, so reports come first found first, and ``stop_on_first`` keeps the
first report in that order (the items after it are dropped).

Bounded search (a preemption bound) is not partitioned: what it explores depends on the
order in which it explores, so only the sequential order gives the sequential result.

Random walks and PCT split by run index: run ``i`` uses seed ``seed + i`` wherever it
runs, so the merged result is the sequential one.
"""

from .coordinator import Backend, Partitioned
from .items import PartResult, RandomItem, WorkItem
from .runs import explore_random
from .wire import OpStub
from .worker import PartDpor, SliceCollector, run_item

__all__ = ["WorkItem", "RandomItem", "PartResult", "PartDpor", "Partitioned", "Backend",
           "OpStub", "SliceCollector", "run_item", "explore_random"]
