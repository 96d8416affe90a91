"""Kconfig: the symbols the model reads, and the two presets.

Detectors are active only when their symbol is set, as in Linux: without
DEBUG_ATOMIC_SLEEP there is no "sleeping function called from invalid context", without
PROVE_LOCKING no lockdep, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

SYMBOLS = {
    "PREEMPT_RT": "spinlock_t and rwlock_t become sleeping rt_mutex-based locks",
    "DEBUG_ATOMIC_SLEEP": "might_sleep()/__might_resched() checks and non_block sections",
    "PROVE_LOCKING": "lockdep: recursive and circular locking reports",
    "PROVE_RAW_LOCK_NESTING": "lockdep's wait-context check tells spinlock_t from "
                              "raw_spinlock_t (a spinlock_t under a raw lock is reported)",
    "KASAN": "freed pages are poisoned; a secondary-MMU access to one is reported",
    "KCSAN": "unordered plain accesses to a shared field are reported as data races",
    "MMU_NOTIFIER": "the mmu_notifier API; without it only its stubs exist",
    "HUNG_TASK": "khungtaskd reports tasks stuck in TASK_UNINTERRUPTIBLE",
    "SOFTLOCKUP_DETECTOR": "the watchdog reports CPUs spinning forever",
    "FAIL_GFP_ATOMIC": "explore the failure of every GFP_ATOMIC allocation",
    "SRCU_SIZE_BIG": "SRCU callbacks on per-CPU lists, invoked concurrently (srcutree "
                     "big, from 128 CPUs); n (default): one ordered list, as a server "
                     "with fewer CPUs boots (convert_to_big=auto)",
}


@dataclass(frozen=True)
class Config:
    PREEMPT_RT: bool = True
    DEBUG_ATOMIC_SLEEP: bool = True
    PROVE_LOCKING: bool = True
    PROVE_RAW_LOCK_NESTING: bool = True     # default y with PROVE_LOCKING on x86/arm64
    KASAN: bool = True
    KCSAN: bool = True
    MMU_NOTIFIER: bool = True
    HUNG_TASK: bool = True
    SOFTLOCKUP_DETECTOR: bool = True
    FAIL_GFP_ATOMIC: bool = True
    SRCU_SIZE_BIG: bool = False             # srcutree: small until contention (< 128 CPUs)

    def set(self, symbol: str, value: bool) -> "Config":
        if symbol not in SYMBOLS:
            raise KeyError(symbol)
        return replace(self, **{symbol: value})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def describe(self) -> str:
        return " ".join(f"{k}={'y' if v else 'n'}" for k, v in self.to_dict().items())


PRESETS = {
    "rt": Config(),
    "nonrt": Config(PREEMPT_RT=False),
}
