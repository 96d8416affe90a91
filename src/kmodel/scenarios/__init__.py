"""Built-in scenarios: named compositions of activities, with their knobs.

A scenario on the command line is either one of these names or a comma-separated list of
activities ("oom,memslot,vcpu").  ``aids`` are patches a scenario needs to force what the
thread's authors forced by hand (Sean's non-blockable hack).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import did_you_mean
from .vm import ACTIVITIES, VmScenario


@dataclass(frozen=True)
class ScenarioDef:
    name: str
    activities: tuple[str, ...]
    summary: str
    knobs: dict = field(default_factory=dict)
    aids: tuple[str, ...] = ()


SCENARIOS = {s.name: s for s in [
    ScenarioDef("oom-reap", ("oom", "vcpu"),
                "OOM kill of the VM process; the oom_reaper reaps guest memory while a vCPU "
                "runs"),
    ScenarioDef("oom-reap-nomemslot", ("oom",),
                "OOM kill where the reaped VMAs hit no memslot (guest memory is shared "
                "memory, which the reaper skips)", {"reap_hits_memslot": False}),
    ScenarioDef("cow-fault-hack", ("vcpu-cow",),
                "a vCPU's CoW fault with Sean's hack forcing KVM's invalidation "
                "non-blockable (2026-02-11)", aids=("sean-nonblock-hack",)),
    ScenarioDef("memslot-vs-madvise", ("memslot", "madvise"),
                "deleting a memslot while madvise(MADV_DONTNEED) invalidates its memory"),
    ScenarioDef("oom-vs-memslot", ("oom", "memslot"),
                "OOM kill and reap while the victim's ioctl thread deletes a memslot",
                {"heap": False}),
    ScenarioDef("oom-vs-madvise", ("oom", "madvise"),
                "OOM reap concurrent with a blockable invalidation from the victim"),
    ScenarioDef("oom-exit", ("oom", "exit", "vcpu"),
                "OOM kill; the victim exits (exit_mmap, kvm_destroy_vm) while the reaper "
                "runs"),
    ScenarioDef("mrelease", ("mrelease", "vcpu"),
                "lmkd kills the VM and reaps it with process_mrelease()"),
    ScenarioDef("reclaim", ("reclaim", "vcpu"),
                "kswapd reclaims guest memory while a vCPU faults (no OOM)"),
    ScenarioDef("other-mm", ("other-mm",),
                "OOM kill of a process with no mmu notifiers"),
    ScenarioDef("oom-fault", ("oom", "vcpu"),
                "OOM kill of a guest whose memory is not faulted in yet: the vCPU's "
                "first faults race the kill and the reap", {"populated": False}),
    ScenarioDef("oom-vm-close", ("oom", "vm-close"),
                "QEMU closes the VM fd (kvm_destroy_vm unregisters KVM's notifier and "
                "frees struct kvm) while the OOM killer kills it and the oom_reaper reaps"),
    ScenarioDef("second-vm-vs-madvise", ("madvise", "vm2-close"),
                "two VMs on one mm: the second is destroyed (its notifier unregistered) "
                "while madvise(MADV_DONTNEED) walks the subscriber list"),
    ScenarioDef("second-vm-oom", ("oom", "vm2-close"),
                "two VMs on one mm: OOM kill and reap while the second VM is destroyed"),
    ScenarioDef("gru-vs-madvise", ("madvise", "gru"),
                "a non-KVM secondary MMU (SGI GRU) next to KVM: the device faults guest "
                "pages in while madvise(MADV_DONTNEED) invalidates them"),
    ScenarioDef("gru-oom", ("oom", "gru"),
                "a non-KVM secondary MMU (SGI GRU) next to KVM: the OOM reaper's "
                "non-blockable invalidation reaches both"),
    ScenarioDef("kvmclock-oom", ("oom", "vcpu"),
                "the vCPU writes kvmclock through its pfn cache while the OOM reaper "
                "invalidates and frees its page", {"kvmclock": True}),
]}


def resolve(spec: str) -> ScenarioDef:
    """A built-in name, or activities joined by commas."""
    if spec in SCENARIOS:
        return SCENARIOS[spec]
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    bad = [p for p in parts if p not in ACTIVITIES]
    if not parts or bad:
        what = bad[0] if bad else spec
        hint = did_you_mean(what, list(SCENARIOS) + list(ACTIVITIES))
        raise KeyError(f"unknown scenario or activity {what!r}{hint}; scenarios: "
                       f"{', '.join(SCENARIOS)}; activities: {', '.join(ACTIVITIES)}")
    return ScenarioDef(spec, tuple(parts), "activities: " + ", ".join(parts))


KNOBS = {
    "pages": (int, "pages per guest memslot (and per VMA); default 1"),
    "heap": (bool, "include QEMU's heap VMA, which backs no memslot; default true"),
    "reap_hits_memslot": (bool, "guest memory is private anonymous memory the reaper "
                                "unmaps (false: shared memory, which it skips); default "
                                "true"),
    "populated": (bool, "guest memory is faulted in and mapped by the secondary MMU at "
                        "the start (false: a fresh guest whose first accesses fault); "
                        "default true"),
    "kvmclock": (bool, "x86: the guest uses kvmclock, so the vCPU writes it through its "
                       "gfn_to_pfn_cache (check/refresh under gpc->lock) before its first "
                       "entry; default false"),
}


def check_knobs(knobs: dict) -> dict:
    """Validate knob names and types; raises KeyError with a one-line message."""
    out = {}
    for name, value in (knobs or {}).items():
        if name not in KNOBS:
            hint = did_you_mean(name, KNOBS)
            raise KeyError(f"unknown knob {name!r}{hint}; knobs: {', '.join(KNOBS)}")
        kind = KNOBS[name][0]
        if kind is bool and not isinstance(value, bool):
            raise KeyError(f"knob {name} takes true or false, not {value!r}")
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)
                            or not 1 <= value <= 64):
            raise KeyError(f"knob {name} takes a whole number from 1 to 64, not {value!r}")
        out[name] = value
    return out


def factory(sdef: ScenarioDef, config, arch: str, knobs: dict | None = None):
    merged = {**sdef.knobs, **(knobs or {})}
    return lambda: VmScenario(config, arch, list(sdef.activities), merged)


__all__ = ["SCENARIOS", "ACTIVITIES", "KNOBS", "ScenarioDef", "resolve", "check_knobs",
           "factory", "VmScenario"]
