"""The kernel-style text report: what a kernel developer pastes into a reply on the list.

For each distinct report: the splat exactly as the model's detector wrote it, then the
interleaving that led to it as a table of steps (step, task, modelled function,
operation), then the command that replays it.  A summary closes the output.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..engine.schedule import decode
from ..patching import load

DEFAULT_LAST = 25
MARK = ">"


def next_step_of(trace: list, task: str | None, step: int) -> int | None:
    """The step at which ``task`` performed its next operation after ``step``."""
    if task is None or step is None or step < 0:
        return None
    for i in range(step + 1, len(trace)):
        if trace[i][0] == task:
            return i
    return None


def trace_table(trace: list, step: int, full: bool = False, last: int = DEFAULT_LAST,
                task: str | None = None) -> str:
    """The interleaving as fixed-width rows.  By default the ``last`` steps up to and
    including ``step`` (the last step before the report was raised); ``full`` shows every
    step of the execution.  The reporting step is marked with ``>``; a note names the
    reporting ``task``'s next operation, which the report was raised on the way to."""
    if not trace:
        return ""
    n = len(trace)
    stop = n - 1 if full or step is None or step < 0 or step >= n else step
    begin = 0 if full else max(0, stop + 1 - last)
    rows = [(i, *trace[i][:3]) for i in range(begin, stop + 1)]
    w_step = max(4, len(str(stop)))
    w_task = max(4, *(len(r[1]) for r in rows))
    w_fn = max(8, *(len(r[2]) for r in rows))
    lines = []
    if full:
        lines.append(f"Interleaving: all {n} steps of the execution")
    elif begin > 0:
        lines.append(f"Interleaving: steps {begin}-{stop} of {n} ({begin} earlier "
                     f"steps not shown; --full-trace shows them)")
    else:
        lines.append(f"Interleaving: steps 0-{stop} of {n}")
    lines.append(f"  {'step':>{w_step}}  {'task':<{w_task}}  {'function':<{w_fn}}  operation")
    for i, task, fn, label in rows:
        mark = MARK if i == step else " "
        lines.append(f"{mark} {i:>{w_step}}  {task:<{w_task}}  {fn:<{w_fn}}  {label}"
                     .rstrip())
    nxt = next_step_of(trace, task, step)
    if nxt is not None and (not full or nxt > step + 1):
        t, fn, label = trace[nxt][:3]
        lines.append(f"  (raised in {t} after step {step}, on its way to step {nxt}: "
                     f"{label} in {fn})")
    if not full and stop < n - 1:
        lines.append(f"  (the execution goes on for {n - 1 - stop} more steps after the "
                     f"report)")
    return "\n".join(lines)


def render_report(report, trace: list | None = None, full: bool = False,
                  last: int = DEFAULT_LAST, replay_path: str | None = None) -> str:
    """One report: the splat, the interleaving table, the replay command."""
    parts = [report.text.rstrip("\n")]
    if trace:
        parts.append(trace_table(trace, report.step, full=full, last=last,
                                 task=report.task))
    elif report.schedule:
        parts.append(f"Interleaving: {len(report.schedule)} steps (not replayed)")
    if replay_path:
        parts.append(f"Replay: kmodel replay {replay_path}")
    return "\n\n".join(parts) + "\n"


def _yn(b: bool) -> str:
    return "yes" if b else "no"


def _designs(spec) -> str:
    return "+".join(spec.patches) if spec.patches else "upstream"


def format_metrics(metrics: dict) -> list[str]:
    """Result.metrics (name -> [min, max]) as readable lines."""
    out = []
    m = dict(metrics)

    def span(v):
        lo, hi = v
        return f"{lo:g}" if lo == hi else f"{lo:g}..{hi:g}"

    if "longest_nonpreemptible_steps" in m:
        out.append(f"longest non-preemptible section: "
                   f"{span(m.pop('longest_nonpreemptible_steps'))} steps")
    if "victim_pages_freed" in m and "victim_pages" in m:
        freed, total = m.pop("victim_pages_freed"), m.pop("victim_pages")
        out.append(f"victim pages freed/victim pages: {span(freed)}/{span(total)}")
    for k, v in sorted(m.items()):
        out.append(f"{k}: {span(v)}")
    return out


def one_line_summary(cr) -> str:
    """design(s), preset, arch, scenario, verdict, strategy, executions, classes, complete,
    elapsed -- the last line of ``kmodel check``."""
    r = cr.result
    spec = cr.spec
    overrides = "".join(f" {k}={'y' if v else 'n'}" for k, v in spec.config.items())
    verdict = cr.verdict
    if r.reports:
        verdict += f" ({len(r.reports)})"
    if r.interrupted:
        verdict += ", interrupted"
    return (f"kmodel: {_designs(spec)} {spec.preset}{overrides} {spec.arch} "
            f"{spec.scenario}: {verdict}; {cr.strategy_used}, {r.executions} executions, "
            f"{r.classes} classes, complete: {_yn(r.complete)}, {r.elapsed_s:.2f} s")


def render_summary(cr) -> str:
    """The summary block: what ran, what it found, the metrics, then the one-line
    summary."""
    spec = cr.spec
    r = cr.result
    lines = ["Summary:"]
    for p in spec.patches:
        try:
            lines.append(f"  design:    {load(p).describe()}")
        except Exception:           # a patch file gone since the check ran
            lines.append(f"  design:    {p}")
    lines.append(f"  config:    preset {spec.preset}: {cr.config.describe()}")
    lines.append(f"  arch:      {spec.arch}")
    lines.append(f"  scenario:  {spec.scenario}"
                 + (f" (knobs: {', '.join(f'{k}={v}' for k, v in spec.knobs.items())})"
                    if spec.knobs else ""))
    lines.append(f"  strategy:  {cr.strategy_used}: {r.executions} executions, "
                 f"{r.classes} classes, {r.sleep_blocked} sleep-set blocked")
    done = "yes" if r.complete else ("no: interrupted" if r.interrupted else
                                      "no: a limit stopped the search")
    lines.append(f"  complete:  {done}")
    if r.first_report_execution is not None:
        at = f" after {r.first_report_s:.2f} s" if r.first_report_s is not None else ""
        lines.append(f"  first report: execution {r.first_report_execution}{at}")
    for m in format_metrics(r.metrics):
        lines.append(f"  {m}")
    lines.append(f"  verdict:   {cr.verdict}" + (f", {len(r.reports)} distinct report(s)"
                                                 if r.reports else ""))
    lines.append(one_line_summary(cr))
    return "\n".join(lines)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def _slug(s: str) -> str:
    return _UNSAFE.sub("_", s).strip("_") or "x"


def replay_file_name(spec, report, n: int) -> str:
    """<designs>-<preset>-<arch>-<scenario>-<kind>-<n>.json"""
    designs = "+".join(Path(p).stem if p.endswith(".py") else p for p in spec.patches)
    return (f"{_slug(designs)}-{spec.preset}-{spec.arch}-{_slug(spec.scenario)}-"
            f"{report.kind}-{n}.json")


def schedule_tasks(schedule: list[str]) -> list[str]:
    """The task names of a schedule, in order of first appearance."""
    seen: dict[str, None] = {}
    for s in schedule:
        seen.setdefault(decode(s)[0], None)
    return list(seen)
