"""Write a reproducer: one self-contained C file (libc and the UAPI headers only), in the
style of the kernel's KVM selftests, that performs a scenario's activities on a real
kernel.

The file is a generated header -- which activities, in which order (``PLAN``), with
which notes -- followed by the fixed body ``repro_body.c``.  For a scenario the order is
phases: the VM's activities together, then vm-close, then the killers, then exit.  For a
replay record the order is the schedule's wherever user space can force it: an activity
that starts in the schedule after another one ends waits for it to finish; one that
starts while another runs waits for it to start, and the program says that the kernel
decides how the two interleave from there.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from importlib import resources

from .. import scenarios
from .activities import ACTIVITIES, KILLERS, PSEUDO, PSEUDO_COMM

BUILD = "gcc -O2 -Wall -o {exe} {src} -lpthread"


class ReproError(Exception):
    """Bad input for a reproducer: one line, exit status 2."""


@dataclass
class Step:
    activity: str
    deps: list = field(default_factory=list)      # [(activity, "S" | "D")]
    note: str | None = None


@dataclass
class Reproducer:
    name: str                   # scenario name, or the replay record's file stem
    activities: list[str]
    plan: list[Step]
    notes: list[str]            # said once, at the top (and in the file's header)
    knobs: dict
    tries: int = 1

    @property
    def needs_root(self) -> bool:
        return any(a in ("oom", "other-mm") for a in self.activities)

    def source(self) -> str:
        comment, plan = _header(self)
        body = resources.files(__package__).joinpath("repro_body.c").read_text()
        return comment + body.replace("/* @PLAN@ */\n", plan)

    def build_line(self, src: str = "repro.c", exe: str = "repro") -> str:
        return BUILD.format(exe=shlex.quote(exe), src=shlex.quote(src))


def _resolve(spec: str):
    from .activities import UNREPRODUCED
    try:
        sdef = scenarios.resolve(spec)
    except KeyError as e:
        raise ReproError(e.args[0]) from None
    for a in sdef.activities:
        if a in UNREPRODUCED:
            raise ReproError(f"activity {a} has no real-kernel reproducer: {UNREPRODUCED[a]}")
    return sdef


def from_scenario(spec: str, knobs: dict | None = None, tries: int = 1) -> Reproducer:
    sdef = _resolve(spec)
    acts = list(dict.fromkeys(sdef.activities))
    merged = {**sdef.knobs, **(knobs or {})}
    vm_acts = [a for a in acts if ACTIVITIES[a].where == "thread"]
    plan: list[Step] = []
    done_before: list = []
    notes = []
    for a in vm_acts:
        plan.append(Step(a))
    done_before = [(a, "D") for a in vm_acts]
    if "vm-close" in acts:
        plan.append(Step("vm-close", list(done_before)))
        done_before.append(("vm-close", "D"))
    killers = [a for a in acts if a in KILLERS or a == "other-mm"]
    if "exit" in acts and any(a in KILLERS for a in acts):
        plan.append(Step("exit", list(done_before)))      # qemu waits for the SIGKILL
        done_before.append(("exit", "S"))
    for a in killers:
        plan.append(Step(a, list(done_before)))
    if "exit" in acts and not any(a in KILLERS for a in acts):
        plan.append(Step("exit", list(done_before) + [(k, "D") for k in killers]))
    if len(acts) > 1:
        notes.append("the model runs these activities concurrently; this program runs "
                     "the VM's activities first, then " + ", ".join(
                         x for x in ("vm-close" if "vm-close" in acts else "",
                                     "the kill" if killers else "",
                                     "exit" if "exit" in acts else "") if x)
                     + ", so that each path is driven; `kmodel repro REPLAY.json` orders "
                     "them as a schedule does")
    notes += _standing_notes(acts, merged)
    return Reproducer(sdef.name, acts, plan, notes, merged, tries)


def from_replay(record: dict, name: str = "replay", tries: int = 1) -> Reproducer:
    """A reproducer ordering the activities as ``record['schedule']`` does."""
    from ..engine.schedule import ScheduleError, decode
    if not isinstance(record, dict) or not isinstance(record.get("scenario"), str) \
            or not isinstance(record.get("schedule"), list):
        raise ReproError("not a kmodel replay record (it needs a scenario and a schedule)")
    sdef = _resolve(record["scenario"])
    acts = list(dict.fromkeys(sdef.activities))
    knobs = {**sdef.knobs, **(record.get("knobs") or {})}
    # the model's task -> the activity it performs (qemu's main thread: vm-close first)
    task_act: dict[str, list[str]] = {}
    for a in acts:
        task_act.setdefault(ACTIVITIES[a].task, []).append(a)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    kernel_steps: dict[str, list[int]] = {}
    for i, entry in enumerate(record["schedule"]):
        try:
            task = decode(entry)[0]
        except (ScheduleError, TypeError, ValueError) as e:
            raise ReproError(f"replay record: schedule step {i}: {e}") from None
        if task in task_act:
            a = task_act[task][0]
            first.setdefault(a, i)
            last[a] = i
        else:
            kernel_steps.setdefault(task, []).append(i)
    if "qemu" in task_act and len(task_act["qemu"]) == 2 and "vm-close" in first:
        # vm_close_thread closes the VM fd, then exits: exit starts where the close ends
        first["exit"] = last["exit"] = last["vm-close"]
    order = sorted(first, key=lambda a: (first[a], acts.index(a)))
    notes = [f"the schedule of {len(record['schedule'])} steps orders the activities: "
             + ", ".join(f"{a} (steps {first[a]}-{last[a]})" for a in order)]
    for task, steps in kernel_steps.items():
        who = "the kernel's oom_reaper thread" if task == "oom_reaper" else f"{task}"
        notes.append(f"{who} (steps {steps[0]}-{steps[-1]}): user space cannot order it; "
                     + ("it starts OOM_REAPER_DELAY (2 s) after the kill"
                        if task == "oom_reaper" else "it runs as the kernel schedules it"))
    plan: list[Step] = []
    kill_at = min((first[a] for a in order if a in KILLERS), default=None)
    for a in order:
        step = Step(a)
        overlap = []
        for b in order:
            if b == a or first[b] > first[a] or (first[b] == first[a]
                                                 and order.index(b) > order.index(a)):
                continue
            if last[b] < first[a]:
                step.deps.append((b, "D"))
            else:
                step.deps.append((b, "S"))
                overlap.append(b)
        if overlap:
            step.note = (f"{a} starts (step {first[a]}) while " + ", ".join(
                f"{b} (steps {first[b]}-{last[b]})" for b in overlap)
                + " runs: released once it has started; the kernel decides how they "
                  "interleave from there")
        plan.append(step)
    if kill_at is not None:
        late = [a for a in order if first[a] > kill_at and ACTIVITIES[a].where != "process"
                and a != "exit"]
        if late:
            notes.append(", ".join(late) + " start after the kill in the schedule, where the "
                         "model's thread is already in the kernel; a killed thread cannot "
                         "enter a syscall, so here they may not run at all")
    notes.append("the record's design (" + ", ".join(record.get("patches") or ["upstream"])
                 + f"), preset ({record.get('preset', '?')}) and arch "
                 f"({record.get('arch', '?')}) are the model's: the real kernel is whatever "
                 "it is")
    notes += _standing_notes(acts, knobs)
    return Reproducer(name, acts, plan, notes, knobs, tries)


def _standing_notes(acts, knobs) -> list[str]:
    out = []
    if knobs.get("reap_hits_memslot") is False:
        out.append("knob reap_hits_memslot=false (shared guest memory) is not reproduced: "
                   "the guest memory here is private anonymous memory")
    if knobs.get("pages", 1) != 1:
        out.append("knob pages is the model's: memslot 0 here has 16 pages and memslot 1 "
                   "4096")
    if any(a in ("oom", "mrelease") for a in acts):
        out.append("where the victim's SIGKILL lands against its threads' syscalls is the "
                   "kernel's choice")
    if "reclaim" in acts:
        out.append("reclaim: kswapd0 is a kernel thread; MADV_PAGEOUT drives the same "
                   "shrink_folio_list path from qemu-pageout, and reclaims anonymous pages "
                   "only where there is swap")
    return out


def _c_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _header(r: Reproducer) -> str:
    enums = [a.enum for a in ACTIVITIES.values()] + list(PSEUDO)
    comms = [a.comm for a in ACTIVITIES.values()] + [PSEUDO_COMM[p] for p in PSEUDO]
    names = list(ACTIVITIES) + ["qemu (ready)", "qemu-hold", "bash"]
    mask = " | ".join(f"(1u << {ACTIVITIES[a].enum})" for a in r.activities) or "0"
    thread_acts = [a for a in ACTIVITIES.values() if a.where == "thread"]
    killable = [a for a in ACTIVITIES.values() if a.where in ("thread", "main")]
    lines = ["/* kmodel reproducer: " + r.name + " (activities: " + ", ".join(r.activities)
             + ")", " *", " * Generated by `kmodel repro`.  Build and run as root:",
             " *   " + r.build_line(), " *   ./repro [--tries N]", " *"]
    for a in r.activities:
        lines.append(f" * {a:9} {ACTIVITIES[a].comm:13} {ACTIVITIES[a].what}")
    lines.append(" *")
    for n in r.notes:
        lines.append(" * Note: " + n)
    lines.append(" */")
    comment = "\n".join(lines) + "\n\n"
    lines = ["/* ---- generated: the activities and their order ---- */",
              "enum { " + ", ".join(enums) + ", NACT };",
              "#define ACT_NAMES { " + ", ".join(_c_str(n) for n in names) + " }",
              "static const char *const ACT_COMM[NACT] = { "
              + ", ".join(_c_str(c) for c in comms) + " };",
              f"#define ACTS_MASK ({mask})",
              "#define HAVE_ACT(a) ((ACTS_MASK >> (a)) & 1u)",
              "#define ACT_IN_QEMU_THREAD(a) (" + " || ".join(
                  f"(a) == {a.enum}" for a in thread_acts) + ")",
              "#define ACT_CAN_BE_KILLED(a) (" + " || ".join(
                  f"(a) == {a.enum}" for a in killable) + ")",
              "#define HAVE_KILLER (HAVE_ACT(A_OOM) || HAVE_ACT(A_MRELEASE))",
              "#define HAVE_VCPU (HAVE_ACT(A_VCPU) || HAVE_ACT(A_VCPU_COW))",
              f"#define POPULATED {1 if r.knobs.get('populated', True) else 0}",
              f"#define NEEDS_ROOT {1 if r.needs_root else 0}",
              f"#define TRIES {int(r.tries)}",
              f"#define SCENARIO {_c_str(r.name)}",
              f"#define ACTIVITIES {_c_str(', '.join(r.activities))}",
              "",
              "struct dep { int act; char what; };",
              "struct step { int act; int ndeps; struct dep deps[12]; const char *note; };",
              "static const struct step PLAN[] = {"]
    for s in r.plan:
        deps = ", ".join(f"{{ {ACTIVITIES[d].enum}, '{w}' }}" for d, w in s.deps)
        note = _c_str(s.note) if s.note else "NULL"
        lines.append(f"\t{{ {ACTIVITIES[s.activity].enum}, {len(s.deps)}, {{ {deps} }}, "
                     f"{note} }},")
    lines += ["};", "static const char *const NOTES[] = { "
              + "".join(_c_str(n) + ", " for n in r.notes) + "NULL };", "", ""]
    return comment, "\n".join(lines)


def write(r: Reproducer, out_dir) -> tuple:
    """Write repro.c and a build script into ``out_dir``; returns (source path, build
    line)."""
    from pathlib import Path
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    src = d / "repro.c"
    src.write_text(r.source())
    line = r.build_line(str(src), str(d / "repro"))
    return src, line
