"""What a real-kernel run needs, checked up front: each missing piece is one line (and
exit status 2 from the command line; a skip reason in the tests).

The paths can be pointed elsewhere with environment variables, which is how the tests
exercise the bad environments: KMODEL_KVM_DEV (/dev/kvm), KMODEL_TRACEFS
(/sys/kernel/tracing), KMODEL_CC (gcc), KMODEL_CGROUP_ROOT (/sys/fs/cgroup) and
KMODEL_UID (the effective uid, to play at not being root).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


class Missing(Exception):
    """Something the real-kernel run needs is not here: one line, exit status 2."""


def kvm_dev() -> str:
    return os.environ.get("KMODEL_KVM_DEV", "/dev/kvm")


def tracefs() -> Path:
    return Path(os.environ.get("KMODEL_TRACEFS", "/sys/kernel/tracing"))


def compiler() -> str:
    return os.environ.get("KMODEL_CC", "gcc")


def cgroup_root() -> Path:
    return Path(os.environ.get("KMODEL_CGROUP_ROOT", "/sys/fs/cgroup"))


def uid() -> int:
    return int(os.environ.get("KMODEL_UID", os.geteuid()))


def memory_cgroup() -> str | None:
    """"v2" or "v1" if a memory controller is usable, else None."""
    root = cgroup_root()
    ctl = root / "cgroup.controllers"
    try:
        if ctl.is_file() and "memory" in ctl.read_text().split():
            return "v2"
    except OSError:
        pass
    return "v1" if (root / "memory" / "memory.limit_in_bytes").is_file() else None


def check_build() -> str:
    """The C compiler and the KVM UAPI header; returns the compiler's path."""
    cc = shutil.which(compiler())
    if cc is None:
        raise Missing(f"no C compiler: {compiler()} is not on PATH (apt-get install gcc)")
    return cc


def check_run(activities, tracing: bool) -> None:
    """Everything a run of the reproducer (and, with ``tracing``, a conformance run)
    needs; raises Missing with the first thing that is not there."""
    if uid() != 0:
        raise Missing("not root: the reproducer needs /dev/kvm and cgroups, and "
                      "conformance a tracefs instance (run as root)")
    dev = kvm_dev()
    if not os.path.exists(dev):
        raise Missing(f"no {dev}: this kernel or machine has no KVM")
    if not os.access(dev, os.R_OK | os.W_OK):
        raise Missing(f"{dev} is not readable and writable here")
    if any(a in ("oom", "other-mm") for a in activities) and memory_cgroup() is None:
        raise Missing(f"no memory cgroup under {cgroup_root()} (neither cgroup v2 with the "
                      "memory controller nor cgroup v1's memory hierarchy): the OOM "
                      "activities need one of their own")
    if tracing:
        t = tracefs()
        if not (t / "instances").is_dir():
            raise Missing(f"no tracefs at {t} (mount -t tracefs nodev {t})")
        if not (t / "events" / "kvm" / "kvm_unmap_hva_range").is_dir():
            raise Missing(f"no kvm:kvm_unmap_hva_range event under {t}/events (KVM or "
                          "its tracepoints are not built)")
