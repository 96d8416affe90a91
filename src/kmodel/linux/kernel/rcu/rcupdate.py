"""include/linux/rcupdate.h: rcu_read_lock()/rcu_read_unlock() with PREEMPT_RCU (both
presets): the read section nests in current->rcu_read_lock_nesting, which
__might_resched() prints as the RCU nest depth."""

from __future__ import annotations

from ..sched import current


def rcu_read_lock() -> None:
    current().rcu_read_lock_nesting += 1


def rcu_read_unlock() -> None:
    current().rcu_read_lock_nesting -= 1
