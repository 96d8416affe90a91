"""include/asm-generic/rwonce.h, and the plain C accesses beside it: every access to a
shared field is a visible op on (object, field).  READ_ONCE/WRITE_ONCE are marked
accesses; load/store are plain ones, which KCSAN reports when they race."""

from __future__ import annotations

from ...engine import READ, WRITE, DecAndTest, Op
from ..mm.kasan import kasan_check


# Accesses to shared fields that no lock orders.  Each is a visible op on (object, field).
# Each is also KASAN-checked: an access to a kfree()d object is a slab-use-after-free
# (mm/kasan.py).

def _kasan(obj, field: str, write: bool) -> None:
    if getattr(obj, "kasan_freed", None) is not None:
        kasan_check(obj, field, write)


async def READ_ONCE(obj, field: str, label: str | None = None):
    await Op((obj, field), READ, label or f"READ_ONCE({_name(obj)}->{field})")
    _kasan(obj, field, False)
    return getattr(obj, field)


async def WRITE_ONCE(obj, field: str, value, label: str | None = None) -> None:
    await Op((obj, field), WRITE, label or f"WRITE_ONCE({_name(obj)}->{field})")
    _kasan(obj, field, True)
    setattr(obj, field, value)


async def load(obj, field: str, label: str | None = None):
    """A plain C load: KCSAN reports it when it races with a write."""
    await Op((obj, field), READ, label or f"{_name(obj)}->{field}", plain=True)
    _kasan(obj, field, False)
    return getattr(obj, field)


async def store(obj, field: str, value, label: str | None = None) -> None:
    """A plain C store."""
    await Op((obj, field), WRITE, label or f"{_name(obj)}->{field} = {value}", plain=True)
    _kasan(obj, field, True)
    setattr(obj, field, value)


async def atomic_rmw(obj, field: str, fn, label: str):
    """An atomic read-modify-write; returns the new value."""
    await Op((obj, field), WRITE, label)
    _kasan(obj, field, True)
    value = fn(getattr(obj, field))
    setattr(obj, field, value)
    return value


async def atomic_dec_and_test(obj, field: str, label: str, key=None, kasan=False) -> bool:
    """atomic_dec_and_test and its kin (refcount_dec_and_test, atomic_long_dec_and_test)
    on ``obj.field``: true for the decrement that reaches zero.  One op on ``key``
    (default ``(obj, field)``) whose kind says whether it reaches zero where it runs, so
    that decrements that stay above zero commute with each other (engine.DecAndTest)."""
    await DecAndTest((obj, field) if key is None else key, label,
                     lambda: getattr(obj, field))
    if kasan:
        _kasan(obj, field, True)
    value = getattr(obj, field) - 1
    setattr(obj, field, value)
    return value == 0


def _name(obj) -> str:
    return getattr(obj, "cname", type(obj).__name__)
