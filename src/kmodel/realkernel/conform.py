"""Conformance: the kernel's own stacks against the model's call chains.

``run(scenario)`` builds the scenario's reproducer, runs it inside a private tracefs
instance with a ``stacktrace`` trigger on each tracepoint of ``PROBES``, and lines each
kernel stack up against the model's chain for the same task at the same place.  The
model's chains come from running the model (``chains.model_chains``); what is written
down here is only where each tracepoint fires in the kernel (``PROBES``) and the few
functions the model names differently (``ALIASES``), each with its reason.

Alignment (``align``): the model's chain, outermost first, must appear in the kernel's
stack in the same order.  A model frame the stack lacks is fine when the running kernel
has no symbol of that name (``/proc/kallsyms``): it was inlined, and the kernel's stacks
omit inlined functions.  Otherwise it is a disagreement.  Kernel frames the model does
not have are shown ("kernel only") and are not disagreements: the model keeps only the
functions its properties depend on.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import env, generate, tracing
from .activities import comm_to_task

# tracepoint -> (the model functions it fires in or under, where it fires in the kernel)
PROBES = {
    "kvm_unmap_hva_range": (("kvm_mmu_notifier_invalidate_range_start",),
                            "at the top of kvm_mmu_notifier_invalidate_range_start "
                            "(virt/kvm/kvm_main.c)"),
    "kvm_page_fault": (("kvm_mmu_page_fault",),
                       "in the vendor's exit handler (handle_ept_violation, "
                       "npf_interception, kvm_handle_page_fault) before it calls "
                       "kvm_mmu_page_fault"),
    "kvm_mmu_spte_requested": (("kvm_tdp_mmu_map",),
                               "in kvm_tdp_mmu_map (TDP MMU), direct_map and FNAME(fetch) "
                               "(shadow MMU), once the pfn is known"),
    "kvm_tdp_mmu_spte_changed": (("kvm_tdp_mmu_map", "kvm_unmap_gfn_range"),
                                 "in handle_changed_spte, under every TDP MMU SPTE change"),
    "kvm_mmu_prepare_zap_page": (("kvm_mmu_zap_all", "kvm_arch_flush_shadow_memslot"),
                                 "in __kvm_mmu_prepare_zap_page, under every zap of a "
                                 "shadow-MMU page (arch/x86/kvm/mmu/mmu.c)"),
    "kvm_mmu_zap_all_fast": (("kvm_arch_flush_shadow_memslot",),
                             "in kvm_mmu_zap_all_fast, which kvm_arch_flush_shadow_memslot "
                             "calls for a deleted memslot"),
    "mark_victim": (("__oom_kill_process",),
                    "in mark_oom_victim, called by __oom_kill_process (mm/oom_kill.c); "
                    "mark_oom_victim is plain code in the model"),
    "start_task_reaping": (("oom_reap_task_mm",), "in oom_reap_task_mm (mm/oom_kill.c)"),
    "finish_task_reaping": (("oom_reap_task_mm",), "in oom_reap_task_mm (mm/oom_kill.c)"),
    "skip_task_reaping": (("oom_reap_task_mm",), "in oom_reap_task_mm (mm/oom_kill.c)"),
}

# model function -> (kernel names it stands for, why)
ALIASES = {
    "process_mrelease": (("__do_sys_process_mrelease", "__se_sys_process_mrelease",
                          "__x64_sys_process_mrelease"),
                         "SYSCALL_DEFINE2(process_mrelease) names the body "
                         "__do_sys_process_mrelease"),
    "sys_close": (("__do_sys_close", "__se_sys_close", "__x64_sys_close"),
                  "SYSCALL_DEFINE1(close) names the body __do_sys_close"),
    "do_send_sig_info_sigkill": (("do_send_sig_info",),
                                 "the model's name for do_send_sig_info(SIGKILL, ...)"),
    "vmx_handle_exit": (("svm_handle_exit", "pvm_handle_exit"),
                        "kvm_x86_ops.handle_exit: the model's vCPU is a VMX one; an SVM or "
                        "PVM host runs its own vendor's handler"),
    "madvise_dontneed": (("madvise_dontneed_free", "madvise_dontneed_single_vma"),
                         "the model folds madvise_dontneed_free and "
                         "madvise_dontneed_single_vma into one function"),
}

KERNEL_THREADS = ("oom_reaper",)      # named by their comm in the trace

_SUFFIX = re.compile(r"\.(constprop|isra|part|cold|llvm)\.?\d*.*$")


def kernel_symbols(path: str = "/proc/kallsyms") -> set:
    """The names of the running kernel's text symbols (suffixes such as .isra.0
    dropped); empty if they cannot be read."""
    out = set()
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1] in "tTwW":
                    out.add(_SUFFIX.sub("", parts[2]))
    except OSError:
        pass
    return out


@dataclass
class Row:
    path: str                 # "<task> <tracepoint>"
    model: list               # the model's chain, outermost first ([] if none)
    kernel: list              # the kernel's stack, outermost first ([] if not seen)
    lines: list               # aligned (model frame, kernel frame, note)
    agreement: str            # yes | NO | not seen in the kernel | not in the model
    count: int = 0            # kernel events with this stack
    missing: list = field(default_factory=list)


def align(chain, kstack_outer_first, ksyms) -> tuple[list, list]:
    """Line the model's chain up against a kernel stack (both outermost first); returns
    (lines, model frames missing from the stack)."""
    lines, missing, j = [], [], 0
    k = [_SUFFIX.sub("", f) for f in kstack_outer_first]
    for m in chain:
        names = {m, *ALIASES.get(m, ((), ""))[0]}
        hit = next((i for i in range(j, len(k)) if k[i] in names), None)
        if hit is None:
            if ksyms and m not in ksyms:
                lines.append((m, "", "inlined (no symbol in /proc/kallsyms)"))
            else:
                lines.append((m, "", "MISSING from the kernel's stack"))
                missing.append(m)
            continue
        lines += [("", f, "kernel only") for f in k[j:hit]]
        lines.append((m, k[hit], "same" if k[hit] == m else "alias: " + ALIASES[m][1]))
        j = hit + 1
    lines += [("", f, "kernel only") for f in k[j:]]
    return lines, missing


def tasks_by_pid(output: str, comm_task: dict) -> dict:
    """pid -> the model's task name, from the reproducer's "task COMM PID" lines (the
    trace's own comm column comes from a pid -> comm cache and can be stale)."""
    out = {}
    for m in re.finditer(r"^kmodel-repro: task (\S+) (\d+)$", output, re.MULTILINE):
        if m.group(1) in comm_task:
            out[int(m.group(2))] = comm_task[m.group(1)]
    return out


def compare(events, chains: dict, comm_task: dict, ksyms, pid_task=None) -> list:
    """The rows of the table: one per distinct (task, tracepoint, kernel stack), then the
    model's chains at a probe that the kernel never showed for that task."""
    rows: list[Row] = []
    seen_keys = set()
    groups: dict = {}
    for ev in events:
        task = (pid_task or {}).get(ev.pid)
        if task is None and ev.task in KERNEL_THREADS:
            task = comm_task.get(ev.task)
        if task is None or ev.name not in PROBES:
            continue
        groups.setdefault((task, ev.name, tuple(ev.stack)), []).append(ev)
    for (task, name, stack), evs in groups.items():
        kstack = list(reversed(stack))
        anchors = PROBES[name][0]
        cands = [c for c in chains.get(task, ()) if c and c[-1] in anchors]
        seen_keys.add((task, name))
        if not cands:
            rows.append(Row(f"{task} {name}", [], kstack,
                            [("", f, "") for f in kstack],
                            "not in the model", len(evs)))
            continue
        best = None
        for c in sorted(cands, key=lambda c: (len(c), c)):
            lines, missing = align(c, kstack, ksyms)
            if best is None or len(missing) < len(best[2]):
                best = (c, lines, missing)
        c, lines, missing = best
        anchor = next((m for m in reversed(c) if not ksyms or m in ksyms), None)
        if anchor in missing and anchor != c[-1]:
            # the innermost model frame the kernel has a symbol for (short of the probe's
            # own function) is not on the stack: another path to the same tracepoint,
            # one the model lacks
            rows.append(Row(f"{task} {name}", [], kstack, [("", f, "") for f in kstack],
                            "not in the model", len(evs)))
            continue
        rows.append(Row(f"{task} {name}", list(c), kstack, lines,
                        "yes" if not missing else "NO", len(evs), missing))
    for name, (anchors, _where) in PROBES.items():
        for task in sorted(set(comm_task.values())):
            if (task, name) in seen_keys:
                continue
            cands = sorted((c for c in chains.get(task, ()) if c and c[-1] in anchors),
                           key=lambda c: (len(c), c))
            if cands:
                c = cands[0]
                rows.append(Row(f"{task} {name}", list(c), [],
                                [(m, "", "") for m in c], "not seen in the kernel"))
    return rows


def render(rows, width: int = 46) -> str:
    """The side-by-side table: path, in the model, in the kernel, agreement (one line
    per aligned frame, outermost first)."""
    def cut(s, n):
        return s if len(s) <= n else s[:n - 3] + "..."
    out = [f"{'path':34} {'in the model':{width}} {'in the kernel':{width}} agreement",
           f"{'-' * 34} {'-' * width} {'-' * width} {'-' * 9}"]
    for r in rows:
        head = f"{r.path}" + (f" (x{r.count})" if r.count > 1 else "")
        first = True
        for m, k, note in r.lines:
            label = r.agreement if first else ""
            extra = f"  [{note}]" if note and note not in ("same", "kernel only") else ""
            out.append(f"{cut(head if first else '', 34):34} {cut(m, width):{width}} "
                       f"{cut(k, width):{width}} {label}{extra}")
            first = False
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# -- the kernel log -----------------------------------------------------------------

SPLAT = re.compile(r"BUG:|WARNING:|possible recursive locking|possible circular locking|"
                   r"INFO: task .* blocked|sleeping function called from invalid context|"
                   r"inconsistent lock state|lockdep")


class KernelLog:
    """/dev/kmsg from now on: ``splats()`` after the run."""

    def __init__(self, path: str = "/dev/kmsg"):
        self.fd = None
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def lines(self) -> list:
        out = []
        if self.fd is None:
            return out
        while True:
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError:          # EPIPE: a record was overwritten; go on
                continue
            if not rec:
                break
            text = rec.decode(errors="replace").split(";", 1)[-1].split("\n")[0]
            out.append(text)
        os.close(self.fd)
        self.fd = None
        return out


def splats(lines) -> list:
    return [ln for ln in lines if SPLAT.search(ln)]


_FRAME = re.compile(r"^\s+(?:\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")


def splat_traces(lines) -> list:
    """(first line, call trace innermost first) of each splat in the kernel log: the
    frames are the records after it that look like " fn+0x1a/0x40" (unreliable "? "
    frames included, as the kernel prints them), up to the next splat or "---[ end"."""
    out = []
    cur = None
    for ln in lines:
        if SPLAT.search(ln) and not ln.startswith(" "):
            cur = (ln, [])
            out.append(cur)
            continue
        if cur is None:
            continue
        if ln.startswith("---[ end"):
            cur = None
            continue
        m = _FRAME.match(ln)
        if m and not ln.lstrip().startswith("?"):
            cur[1].append(_SUFFIX.sub("", m.group(1)))
    return out


def compare_splat(model_trace, kernel_trace, ksyms) -> tuple[list, list]:
    """The model's splat trace against the kernel's (both innermost first): align them
    outermost first, as the stacks are; the model's detector frames (``__might_resched``
    and the lock) are compared like any other."""
    return align(list(reversed(model_trace)), list(reversed(kernel_trace)), ksyms)


def realtime() -> bool:
    """A PREEMPT_RT kernel: /sys/kernel/realtime, or PREEMPT_RT in uname -v."""
    try:
        if Path("/sys/kernel/realtime").read_text().strip() == "1":
            return True
    except OSError:
        pass
    return "PREEMPT_RT" in platform.version()


def kernel_config(symbol: str) -> bool | None:
    """CONFIG_<symbol>=y in /proc/config.gz, or None if there is none."""
    import gzip
    try:
        with gzip.open("/proc/config.gz", "rt") as f:
            text = f.read()
    except OSError:
        return None
    return f"CONFIG_{symbol}=y" in text


def splat_summary(c) -> str:
    """The kernel log against the model's reports for the host's preset."""
    preset = c.model_preset
    model = [f"{k}: {t}" for k, t, _tr in c.model_reports]
    lines = []
    if c.splats:
        lines.append("kernel log: splats during the run:")
        lines += ["  " + s for s in c.splats[:20]]
    else:
        lines.append("kernel log: no BUG, WARNING or lockdep splat during the run")
    lines.append(f"the model (upstream, preset {preset}): " +
                 ("; ".join(model) if model else "no report"))
    if c.rt and kernel_config("DEBUG_ATOMIC_SLEEP"):
        want = [tr for k, _t, tr in c.model_reports if k == "sleep-in-atomic"]
        got = [tr for first, tr in c.splat_traces
               if "sleeping function called from invalid context" in first]
        lines.append("PREEMPT_RT + DEBUG_ATOMIC_SLEEP: the model " +
                     ("splats" if want else "does not splat") + ", the kernel " +
                     ("splats" if got else "does not") +
                     (": agree" if bool(want) == bool(got) else ": DISAGREE"))
        if want and got:
            al, missing = compare_splat(want[0], got[0], kernel_symbols())
            lines.append("the splat's call trace, model against kernel: " +
                         ("the kernel's contains the model's" if not missing else
                          "the kernel's lacks " + ", ".join(missing)))
            lines += ["  " + f"{m:44} {k:44} {n}".rstrip() for m, k, n in al]
    elif not c.rt:
        agree = preset == "nonrt" and not model and not c.splats
        lines.append("this kernel is not PREEMPT_RT: the thread's splat needs PREEMPT_RT and "
                     "DEBUG_ATOMIC_SLEEP" + ("; the model agrees (no splat)" if agree else ""))
    return "\n".join(lines)


# -- the run ------------------------------------------------------------------------

@dataclass
class Conformance:
    scenario: str
    rows: list
    output: str               # the reproducer's own output
    returncode: int
    splats: list
    missing_events: list
    model_reports: list       # (kind, title, trace) of the model's reports, host preset
    rt: bool
    seconds: float
    model_preset: str = "nonrt"   # the preset the model ran with (a record's own)
    splat_traces: list = field(default_factory=list)   # (first line, trace) per splat

    @property
    def disagreements(self) -> list:
        return [r for r in self.rows if r.agreement == "NO"]


def run(scenario: str, knobs: dict | None = None, record: dict | None = None,
        tries: int = 1, workdir=None) -> Conformance:
    """Build and run the reproducer under tracing and compare.  Raises env.Missing when
    the machine lacks something, generate.ReproError on bad input."""
    t0 = time.perf_counter()
    repro = (generate.from_replay(record, tries=tries) if record is not None
             else generate.from_scenario(scenario, knobs, tries=tries))
    cc = env.check_build()
    env.check_run(repro.activities, tracing=True)
    rt = realtime()
    preset = "rt" if rt else "nonrt"
    if record is not None and isinstance(record.get("preset"), str):
        preset = record["preset"]                # a replay runs the record as saved
    from .chains import model_run
    chains, reports = model_run(repro.name if record is None else record["scenario"],
                                repro.knobs, preset, record=record)
    with tempfile.TemporaryDirectory(prefix="kmodel-conform-", dir=workdir) as d:
        src, _ = generate.write(repro, d)
        exe = Path(d) / "repro"
        b = subprocess.run([cc, "-O2", "-Wall", "-o", str(exe), str(src), "-lpthread"],
                           capture_output=True, text=True)
        if b.returncode != 0:
            raise env.Missing(f"the reproducer does not build here: "
                              f"{(b.stderr.strip().splitlines() or ['?'])[0]}")
        log = KernelLog()
        with tracing.Instance(env.tracefs()) as inst:
            proc = subprocess.Popen([str(exe), "--tries", str(tries)],
                                    env={**os.environ, "KMODEL_TRACE_MARKER": str(inst.marker)},
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, start_new_session=True)
            try:
                out, _ = proc.communicate(timeout=60 * tries)
            except BaseException:
                _stop(proc)
                raise
            text = inst.read()
            missing = list(inst.missing)
        kmsg = log.lines()
    events = tracing.parse(text, start_marker="go ", end_marker=" end")
    comm_task = comm_to_task(repro.activities)
    rows = compare(events, chains, comm_task, kernel_symbols(), tasks_by_pid(out, comm_task))
    return Conformance(repro.name, rows, out, proc.returncode, splats(kmsg), missing,
                       reports, rt, time.perf_counter() - t0, preset, splat_traces(kmsg))


def _stop(proc) -> None:
    """The reproducer cleans up on SIGTERM (its children, its cgroup); after 5 s it is
    killed, and what it left is removed here: the processes of its session and of its
    memory cgroup, then the cgroup."""
    import signal
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
        return
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    root = env.cgroup_root()
    for cg in (root / "memory" / f"kmodel-repro-{proc.pid}", root / f"kmodel-repro-{proc.pid}"):
        if not cg.is_dir():
            continue
        for _ in range(50):
            try:
                pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
            except OSError:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                cg.rmdir()
                break
            except OSError:
                time.sleep(0.1)
