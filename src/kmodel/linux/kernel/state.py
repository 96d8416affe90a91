"""The kernel's per-execution state, declared in one place: everything that lives as long
as one modelled boot and that no single object owns.  The scenario that runs an
execution makes one ``Kernel`` (``KernelProgram.kernel``); model code reaches it with
``core.kernel()``."""

from __future__ import annotations

from ..config import Config
from .locking.lockdep import Lockdep


class Kernel:
    def __init__(self, config: Config, arch: str = "x86"):
        self.config = config
        self.arch = arch
        self.lockdep = Lockdep(self)
        self.next_pid = 100
        self.warned_once: set = set()
        self.might_resched_printed = False   # __might_resched: one report per HZ
        self.tainted = False
        self.longest_nonpreempt = (0, "", "")  # (steps, task, where it ended)
        # Globals of kernel files, made on first use by the file that owns them:
        self.next_pfn = 0x1000               # mm/page_alloc.c: the next free page
        self.oom_reaper = None               # mm/oom_kill.c: oom_reaper_state
        self.mmu_notifier_srcu = None        # mm/mmu_notifier.c: DEFINE_STATIC_SRCU(srcu)

    def alloc_pid(self) -> int:
        self.next_pid += 1
        return self.next_pid
