"""Wakeup trees (Abdulla, Aronis, Jonsson, Sagonas, POPL 2014 / JACM 2017): the branches
still to explore at one state of the DPOR search, as a tree of sequences of steps.

One insertion, ``insert``, shared by the sequential search (``dpor.Dpor``) and the
partitioned one (``partition.coordinator``, ``partition.worker``).

A sequence is inserted where a race was found: ``v``, the events after the raced event
that do not happen-after it, then the other task's op.  Its events are ``SeqEvent``s,
which carry the clocks that give the happens-before order inside ``v``.  Once in a tree,
each step is a ``Step``: the task, its choice values and its op, without clocks.

Object keys (``Op.key``) are numbered per execution in the order objects are first
touched, so a key seen in one execution is comparable with another execution's only
below the number of objects both had numbered at the state the tree belongs to
(``Step.comparable``).
"""

from __future__ import annotations

from ..ops import MAY_CONFLICT

EVERY_KEY = 1 << 60       # "every key comparable": ops pending at the current state


class Step:
    """One step of a sequence in a wakeup tree: a task, the choice values its step
    resolves (None: not known yet), its op, the execution the op was seen in, and how
    many objects were numbered at the state where the sequence was inserted."""

    __slots__ = ("task", "choices", "op", "seen_in", "comparable")

    def __init__(self, task, choices, op, seen_in, comparable):
        self.task = task
        self.choices = choices
        self.op = op
        self.seen_in = seen_in
        self.comparable = comparable

    def __repr__(self):
        return f"{self.task}:{self.op.label if self.op is not None else '?'}"


class Branch:
    """A node of a wakeup tree: its step, and the branches that follow it."""

    __slots__ = ("step", "children")

    def __init__(self, step: Step, children: list):
        self.step = step
        self.children = children


class SeqEvent:
    """An event of a sequence being inserted: its task (index and name), op, vector
    clock and index in its task (which give the happens-before order among the
    sequence's events), the choice values it took, and the execution it was seen in."""

    __slots__ = ("index", "task", "op", "clock", "local", "choices", "seen_in")

    def __init__(self, index, task, op, clock, local, choices, seen_in):
        self.index = index
        self.task = task
        self.op = op
        self.clock = clock
        self.local = local
        self.choices = choices
        self.seen_in = seen_in


def compatible(a, b) -> bool:
    """Choice values that do not contradict each other (None: any)."""
    return a is None or b is None or a == b


def dependent(a, a_seen_in, b, b_seen_in, comparable) -> bool:
    """Whether op ``a`` (seen in execution ``a_seen_in``, keys comparable below
    ``comparable``) and op ``b`` (seen in ``b_seen_in``) conflict.  The two were seen in
    other places than the one this sequence puts them in, so a DEC counts as a write
    (``ops.MAY_CONFLICT``)."""
    ka, kb = a.key, b.key
    if ka < 0 or kb < 0 or not MAY_CONFLICT[a.kind][b.kind]:
        return False
    if a_seen_in == b_seen_in or (ka < comparable and kb < comparable):
        return ka == kb
    return True     # objects first seen in different executions: assume the same one


def weak_initial(task, op, seen_in, seq: list[SeqEvent], comparable,
                 weak: bool = False):
    """Whether ``task``, whose next op is ``op``, is an initial of ``seq``: its first
    event in ``seq`` has no happens-before predecessor in ``seq``.  Returns (bool, that
    event or None).  With ``weak``, a task with no event in ``seq`` whose op is
    independent of all of it counts too (``op`` seen in execution ``seen_in``, keys
    comparable below ``comparable``).

    Weak initials are off in the searches: with them, the sleep-set check at insertion
    drops reversals the search needs (found by differential testing against the naive
    search).  Only true initials count: a reversal is redundant when it starts with a
    sleeping task's op, or when a leaf of the wakeup tree is a prefix of it."""
    first: dict[int, int] = {}          # task index -> its first event's local index
    for e in seq:
        if e.task == task:
            clock = e.clock
            n = len(clock)
            for t, loc in first.items():
                if t < n and clock[t] >= loc:
                    return False, e
            return True, e
        if e.index not in first:
            first[e.index] = e.local
    if not weak:
        return False, None
    for e in seq:
        if dependent(op, seen_in, e.op, e.seen_in, comparable):
            return False, None
    return True, None


def covered(sleeping, seq: list[SeqEvent], weak: bool = False) -> bool:
    """Whether a task of ``sleeping`` (dicts task -> op pending at the tree's state; an
    op of None is skipped) starts ``seq``: its subtree covers ``seq`` already."""
    for tasks in sleeping:
        for q, qop in tasks.items():
            if qop is not None and weak_initial(q, qop, -1, seq, EVERY_KEY, weak)[0]:
                return True
    return False


def insert(tree: list[Branch], seq: list[SeqEvent], comparable: int,
           sleeping=(), weak: bool = False):
    """Insert ``seq`` into the wakeup ``tree`` of a state where ``comparable`` objects
    were numbered and the tasks of ``sleeping`` (see ``covered``) sleep or were
    explored.  Dropped when one of those tasks starts it, or when a leaf of the tree
    is a prefix of it (up to reordering independent events); otherwise it is added
    below the longest branch that starts it.  Returns the list it was appended to and
    the new branch, or None when it was dropped.  ``seq`` is consumed."""
    if covered(sleeping, seq, weak):
        return None
    branches = tree
    while True:
        for b in branches:
            st = b.step
            ok, x = weak_initial(st.task, st.op, st.seen_in, seq, st.comparable, weak)
            if ok and x is not None and not compatible(st.choices, x.choices):
                ok = False
            if ok:
                if not b.children:
                    return None         # a leaf: whatever follows it will cover seq
                if x is not None:
                    seq.remove(x)
                    if not seq:
                        return None
                branches = b.children
                break
        else:
            chain: list[Branch] = []
            for e in reversed(seq):
                chain = [Branch(Step(e.task, e.choices, e.op, e.seen_in, comparable), chain)]
            branches.append(chain[0])
            return branches, chain[0]
