"""include/asm-generic/bitops/atomic.h (and instrumented-atomic.h's test_and_set_bit)."""

from __future__ import annotations

from ...engine import READ, UPDATE, WRITE, Op


# Atomic bitops (include/asm-generic/bitops/atomic.h) on a flags word held as a set of
# bit names.  Each bit is its own object: ops on different bits of one word commute, and
# set_bit and set_bit of one bit commute (neither returns a value).  clear_bit does not
# commute with set_bit of the same bit (the order decides the bit), so it is a write.

async def test_bit(nr: str, obj, field: str = "flags") -> bool:
    await Op((obj, field, nr), READ, f"test_bit({nr})")
    return nr in getattr(obj, field)


async def set_bit(nr: str, obj, field: str = "flags") -> None:
    await Op((obj, field, nr), UPDATE, f"set_bit({nr})")
    getattr(obj, field).add(nr)


async def clear_bit(nr: str, obj, field: str = "flags") -> None:
    await Op((obj, field, nr), WRITE, f"clear_bit({nr})")
    getattr(obj, field).discard(nr)


async def test_and_set_bit(nr: str, obj, field: str = "flags") -> bool:
    await Op((obj, field, nr), WRITE, f"test_and_set_bit({nr})")
    bits = getattr(obj, field)
    old = nr in bits
    bits.add(nr)
    return old
