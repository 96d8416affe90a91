"""What travels between processes: ops without their model objects, and wakeup trees in
a flat form."""

from __future__ import annotations

from ..ops import Op
from ..strategies.wakeup import Branch, Step


class OpStub(Op):
    """An op as remembered in a sleep set or a wakeup tree, without the model object it
    touches (which cannot travel between processes): its kind, label and object key."""

    __slots__ = ()

    def __init__(self, kind: int, label: str, key: int, plain: bool = False):
        self.obj = None
        self.kind = kind
        self.label = label
        self.plain = plain
        self.key = key

    def __reduce__(self):
        return (OpStub, (self.kind, self.label, self.key, self.plain))


class Stubs:
    """Copies of DPOR's records with every op replaced by an ``OpStub``; an op seen again
    gets the same stub (pickled once), as long as the cache is small (it keeps the ops,
    and so the objects of their executions, alive)."""

    def __init__(self):
        self.ops: dict = {}

    def op(self, op):
        if op is None or type(op) is OpStub:
            return op
        s = self.ops.get(op)             # by identity: ops do not define equality
        if s is None:
            if len(self.ops) >= 4096:
                self.ops.clear()
            s = self.ops[op] = OpStub(op.kind, op.label, op.key, op.plain)
        return s

    def ops_dict(self, d: dict) -> dict:
        return {k: self.op(v) for k, v in d.items()}

    def sequence(self, seq: list) -> list:
        """A wakeup sequence as tuples of ``SeqEvent``'s fields (``SeqEvent(*fields)``
        again): small to pickle, and an event's clock is the execution's own tuple,
        which pickle writes once however many sequences hold the event."""
        op = self.op
        return [(e.index, e.task, op(e.op), e.clock if type(e.clock) is tuple
                 else tuple(e.clock), e.local, e.choices, e.seen_in) for e in seq]


class Forest:
    """Wakeup trees in a flat form that pickles without recursion (a frontier nests each
    node's tree in its parent's, hundreds of levels deep): ``rows[i]`` is list i, one
    ``(step fields, index of its children's list)`` per branch, the fields in the order
    ``Step`` takes them.  A list shared by two trees is encoded once and decoded as one
    list."""

    def __init__(self):
        self.stubs = Stubs()
        self.rows: list = []
        self._index: dict[int, int] = {}
        self._keep: list = []             # the encoded lists stay alive (their ids)

    def _slot(self, lst: list, todo: list) -> int:
        i = self._index.get(id(lst))
        if i is None:
            i = self._index[id(lst)] = len(self.rows)
            self.rows.append(None)
            self._keep.append(lst)
            todo.append(lst)
        return i

    def add(self, lst: list) -> int:
        todo: list = []
        first = self._slot(lst, todo)
        op = self.stubs.op
        slot = self._slot
        while todo:
            cur = todo.pop()
            self.rows[self._index[id(cur)]] = [
                ((s.task, s.choices, op(s.op), s.seen_in, s.comparable),
                 slot(b.children, todo))
                for b in cur for s in (b.step,)]
        return first

    @staticmethod
    def decode(rows: list) -> list:
        lists: list = [[] for _ in rows]
        for out, row in zip(lists, rows):
            for fields, j in row:
                out.append(Branch(Step(*fields), lists[j]))
        return lists
