"""The command line: kmodel list | check | replay | explain | matrix.

Exit status: 0 clean, 1 reports found, 2 bad input (or a design or model that crashed),
130 interrupted (what was found so far is printed and saved).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

import click
from rich.console import Console

from . import api, cache
from .errors import did_you_mean, where
from .linux.config import PRESETS, SYMBOLS
from .linux.kernel.core import REGISTRY
from .matrix import checks, run_build_matrix, run_matrix, summarize
from .patches import AIDS, ORDER
from .patching import PatchError, load
from .report.diff import design_diff, module_of, obj_name, value_name
from .report.formats import MatrixOutput, offered_by
from .report.formats.json import write_replay
from .report.matrix import print_table
from .report.text import (
    one_line_summary,
    render_report,
    render_summary,
    replay_file_name,
)
from .scenarios import ACTIVITIES, SCENARIOS

EXIT_CLEAN, EXIT_REPORTS, EXIT_BAD, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_SIGPIPE = 141
DEFAULT_OUT = "kmodel-out"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Exit(Exception):
    def __init__(self, code: int):
        self.code = code


def _quiet_stdout() -> None:
    """After a broken pipe: send what Python still flushes at exit to /dev/null."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _err(msg: str) -> None:
    click.echo(f"kmodel: error: {msg}", err=True)


def handled(fn):
    """Bad input is one line and exit 2, never a traceback; Ctrl-C is exit 130."""
    @functools.wraps(fn)
    def wrapper(*args, debug: bool = False, **kw):
        try:
            return fn(*args, **kw)
        except Exit as e:
            sys.exit(e.code)
        except BrokenPipeError:                  # kmodel ... | head
            _quiet_stdout()
            sys.exit(EXIT_SIGPIPE)
        except api.BuildOnly as e:
            click.echo(f"kmodel: builds: {e}")
            sys.exit(EXIT_CLEAN)
        except (api.BadInput, PatchError) as e:
            if debug:
                traceback.print_exc()
            _err(str(e))
            sys.exit(EXIT_BAD)
        except KeyboardInterrupt:
            click.echo("kmodel: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (click.exceptions.ClickException, click.exceptions.Abort,
                click.exceptions.Exit):
            raise
        except Exception as e:               # a patch file or the model raised
            if debug:
                traceback.print_exc()
            _err(f"{type(e).__name__}: {e}{where(e)}"
                 + ("" if debug else "; --debug shows the traceback"))
            sys.exit(EXIT_BAD)
    return click.option("--debug", is_flag=True,
                        help="Print the Python traceback of an unexpected error.")(wrapper)


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="kmodel", prog_name="kmodel")
def cli():
    """kmodel: an executable model of the KVM MMU-notifier / OOM-reaper locking protocol
    and a model checker that explores its interleavings.

    \b
    Examples:
      kmodel list
      kmodel check --scenario oom-reap --preset rt
      kmodel check --patch v1-raw-mn-lock --scenario oom-reap --html timeline.html
      kmodel replay kmodel-out/upstream-rt-x86-oom-reap-sleep-in-atomic-1.json
      kmodel explain v2-call-srcu
      kmodel matrix --time 5 --markdown matrix.md
    """


# -- progress ---------------------------------------------------------------------------

class Ticker:
    """A progress line on stderr for anything running longer than ~1 s: executions,
    executions/s, reports so far.  Silent when stderr is not a terminal or with --quiet.
    ``api.run_check(progress=ticker)`` feeds it from the exploring thread; a background
    thread draws."""

    def __init__(self, enabled: bool, label: str = ""):
        self.enabled = enabled
        self.label = label
        self.state: api.Progress | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.perf_counter()
        self._base_exec = 0

    def __call__(self, state) -> None:
        self.state = state

    def relabel(self, label: str) -> None:
        self.label = label
        self.state = None
        self._t0 = time.perf_counter()

    def text(self) -> str:
        s = self.state
        dt = time.perf_counter() - self._t0
        if s is None:
            return f"{self.label}  starting  {dt:.1f} s"
        rate = s.executions / s.elapsed_s if s.elapsed_s > 0 else 0.0
        return (f"{self.label}  {s.executions} executions  {rate:.0f}/s  "
                f"{s.reports} report{'s' if s.reports != 1 else ''}  {dt:.1f} s")

    def _run(self) -> None:
        if self._stop.wait(1.0):
            return
        console = Console(stderr=True)
        with console.status(self.text(), spinner="dots") as status:
            while not self._stop.wait(0.25):
                status.update(self.text())

    def __enter__(self):
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        return False


def _progress_enabled(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


# -- option parsing ---------------------------------------------------------------------

class Choice(click.Choice):
    """``click.Choice`` whose error for an unknown value says "did you mean X?", as
    kmodel's other unknown-name errors do (``api.unknown``)."""

    def convert(self, value, param, ctx):
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as e:
            hint = did_you_mean(value, [str(c) for c in self.choices]) \
                if isinstance(value, str) else ""
            if hint:
                e.message = f"{e.message.rstrip('.')}{hint}."
            raise


def _parse_config(values) -> dict:
    out = {}
    for v in values:
        sym, sep, val = v.partition("=")
        sym = sym.strip().removeprefix("CONFIG_")
        if not sep or val.strip().lower() not in ("y", "n", "yes", "no", "1", "0", "true",
                                                   "false"):
            raise click.BadParameter(f"{v!r}: expected SYMBOL=y or SYMBOL=n",
                                     param_hint="--config")
        out[sym] = val.strip().lower() in ("y", "yes", "1", "true")
    return out


def _knob_value(v: str):
    low = v.strip().lower()
    if low in ("true", "yes", "y", "on"):
        return True
    if low in ("false", "no", "n", "off"):
        return False
    try:
        return int(v, 0)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def _parse_knobs(values) -> dict:
    out = {}
    for v in values:
        k, sep, val = v.partition("=")
        if not sep or not k.strip():
            raise click.BadParameter(f"{v!r}: expected key=value", param_hint="--knob")
        out[k.strip()] = _knob_value(val)
    return out


# -- list -------------------------------------------------------------------------------

@cli.command("list", context_settings=CONTEXT)
@handled
def list_cmd():
    """List the built-in designs, scenarios, activities, presets, config symbols and
    strategies.

    \b
    Example:
      kmodel list
    """
    click.echo("Designs (--patch NAME; or --patch path/to/file.py):")
    pats = [load(n) for n in ORDER]
    w = max(len(p.name) for p in pats)
    for p in pats:
        who = ", ".join(x for x in (p.date, p.author) if x)
        click.echo(f"  {p.name:<{w}}  {who + ': ' if who else ''}{p.title}")
    click.echo("\nDebugging aids (--patch NAME):")
    for n in AIDS:
        p = load(n)
        who = ", ".join(x for x in (p.date, p.author) if x)
        click.echo(f"  {p.name:<{w}}  {who + ': ' if who else ''}{p.title}")
    click.echo("\nScenarios (--scenario NAME, or activities joined by commas):")
    w = max(len(s) for s in SCENARIOS)
    for s in SCENARIOS.values():
        extra = []
        if s.knobs:
            extra.append("knobs " + ", ".join(f"{k}={v}" for k, v in s.knobs.items()))
        if s.aids:
            extra.append("with " + ", ".join(s.aids))
        click.echo(f"  {s.name:<{w}}  [{','.join(s.activities)}] {s.summary}"
                   + (f" ({'; '.join(extra)})" if extra else ""))
    click.echo("\nActivities:")
    w = max(len(a) for a in ACTIVITIES)
    for a, d in ACTIVITIES.items():
        click.echo(f"  {a:<{w}}  {d}")
    click.echo("\nPresets (--preset):")
    for name, cfg in PRESETS.items():
        click.echo(f"  {name:<6}  {cfg.describe()}")
    click.echo("\nConfig symbols (--config SYMBOL=y|n):")
    w = max(len(s) for s in SYMBOLS)
    for sym, d in SYMBOLS.items():
        click.echo(f"  {sym:<{w}}  {d}")
    click.echo("\nArches (--arch): " + ", ".join(api.ARCHES))
    click.echo("\nStrategies (--strategy):")
    w = max(len(s) for s in api.STRATEGIES)
    for s, d in api.STRATEGIES.items():
        click.echo(f"  {s:<{w}}  {d}")


# -- check ------------------------------------------------------------------------------

def _save_and_print(cr, out_dir: Path, full: bool, quiet: bool) -> list[tuple]:
    """Print each report (splat, interleaving, replay command) and save its replay
    record.  Returns [(report, trace, replay path)]."""
    shown = []
    counts: dict[str, int] = {}
    for rep in cr.result.reports:
        trace = None
        path = None
        if rep.schedule:
            record = cr.replay_record(rep)
            # a patch file by its absolute path: the record replays from any directory
            record["patches"] = [str(Path(p).resolve()) if p.endswith(".py") and
                                 Path(p).is_file() else p for p in record["patches"]]
            counts[rep.kind] = counts.get(rep.kind, 0) + 1
            path = out_dir / replay_file_name(cr.spec, rep, counts[rep.kind])
            write_replay(path, record)
            try:
                trace = api.replay(record).trace
            except api.BadInput as e:         # should not happen: same model, same schedule
                click.echo(f"kmodel: warning: could not replay the report: {e}", err=True)
        shown.append((rep, trace, str(path) if path else None))
        if not quiet:
            click.echo(render_report(rep, trace, full=full,
                                     replay_path=str(path) if path else None))
    return shown


def _format_options(command: str):
    """``--NAME FILE`` for each output format ``command`` offers (report/formats/: one
    module per format); the command gets them as keyword arguments ``out_NAME``."""
    def deco(fn):
        for fmt in reversed(offered_by(command)):
            fn = click.option(f"--{fmt.name}", f"out_{fmt.name}",
                              type=click.Path(dir_okay=False), metavar="FILE",
                              help=fmt.help[command])(fn)
        return fn
    return deco


def _chosen(command: str, outputs: dict) -> list[tuple]:
    """[(Format, path)] of the output options given to ``command``."""
    return [(f, outputs[f"out_{f.name}"]) for f in offered_by(command)
            if outputs.get(f"out_{f.name}")]


def _write_outputs(command: str, outputs: dict, cr, shown) -> None:
    for fmt, path in _chosen(command, outputs):
        fmt.write_check(path, cr, shown)


def _jobs_option(what: str):
    return click.option(
        "--jobs", "-j", type=int, default=None, metavar="N",
        help=f"{what} [default: every core, {os.cpu_count() or 1} here; with --ray: the "
             "cluster's CPUs].")


def _check_jobs(jobs: int | None) -> None:
    if jobs is not None and jobs < 1:
        raise api.BadInput(f"--jobs must be at least 1, not {jobs}")


_ray_option = click.option(
    "--ray", "ray", metavar="auto|ADDRESS",
    help="Run on a Ray cluster (pip install 'kmodel[ray]'): 'auto' for the cluster this "
         "machine belongs to, or its address (host:6379, ray://host:10001).")

_cache_option = click.option(
    "--no-cache", is_flag=True,
    help="Run every check, even one whose result is in the cache (a check answers from "
         "the cache when the model's sources, its patch files and its options are "
         "unchanged; KMODEL_CACHE_DIR sets the directory, KMODEL_NO_CACHE=1 is "
         "--no-cache).")


def _from_cache_note(n: int, total: int) -> None:
    if n:
        what = "the check" if total == 1 else f"{n} of {total} checks"
        click.echo(f"kmodel: {what} answered from the cache in {cache.directory()} "
                   "(--no-cache runs again)", err=True)


CHECK_HELP = """Check designs under one configuration and scenario.

Explores the scenario's interleavings on a kernel built from a preset, config overrides,
an arch and the patches (in the order given).  Each distinct report is printed as the
kernel would print it, then the interleaving that led to it, then the command that
replays it; its replay record is saved under --out.

\b
Examples:
  kmodel check --scenario oom-reap --preset rt
  kmodel check --patch v1-raw-mn-lock --preset rt --scenario oom-vs-memslot
  kmodel check --patch examples/my_design.py --scenario oom-reap
  kmodel check --scenario oom,vcpu --strategy random --runs 500 --seed 7
  kmodel check --patch v2-call-srcu --config MMU_NOTIFIER=n
  kmodel check --scenario oom-exit --strategy dpor --jobs 8
  kmodel check --scenario oom-exit --strategy dpor --ray auto

A DPOR search that takes more than a quarter second is split over --jobs worker
processes (or a Ray cluster with --ray): the verdict, the set of reports and the number of
classes are those of a search on one core; the number of executions may differ a little.
Random walks and PCT are split by run and give the one-core result; bounded search runs
in one process.

Exit status: 0 clean, 1 reports found, 2 bad input, 130 interrupted."""


@cli.command(context_settings=CONTEXT, help=CHECK_HELP)
@click.option("--patch", "-p", "patches", multiple=True, metavar="NAME|FILE",
              help="A built-in design or a patch file; repeatable, applied in order "
                   "[default: upstream].")
@click.option("--preset", type=Choice(list(PRESETS)), default="rt", show_default=True,
              help="Kconfig preset.")
@click.option("--config", "-c", "configs", multiple=True, metavar="SYM=y|n",
              help="Override a config symbol; repeatable (see kmodel list).")
@click.option("--arch", type=Choice(list(api.ARCHES)), default="x86",
              show_default=True)
@click.option("--scenario", "-s", default="oom-reap", show_default=True,
              metavar="NAME|ACT,ACT", help="A built-in scenario or activities joined by "
                                           "commas.")
@click.option("--strategy", type=Choice(list(api.STRATEGIES)), default="default",
              show_default=True, help="How to explore (see kmodel list).")
@click.option("--preemptions", type=click.IntRange(0), default=2, show_default=True,
              metavar="K", help="Preemption bound of --strategy bounded (and of the "
                                "default strategy's first phase, at most 2).")
@click.option("--runs", type=click.IntRange(1), default=200, show_default=True, metavar="N",
              help="Random walks of --strategy random.")
@click.option("--seed", type=int, default=0, show_default=True, metavar="S",
              help="Seed of --strategy random.")
@click.option("--time", "time_limit", type=click.FloatRange(min=0, min_open=True),
              metavar="SECONDS", help="Stop exploring after this long (the result is then "
                                      "not complete).")
@click.option("--max-executions", type=click.IntRange(1), metavar="N",
              help="Stop after N executions.")
@click.option("--max-steps", type=click.IntRange(1), default=5000, show_default=True,
              metavar="N", help="Steps per execution; beyond it a livelock is reported.")
@click.option("--knob", "knobs", multiple=True, metavar="KEY=VALUE",
              help="Scenario knob, e.g. pages=2, heap=false, reap_hits_memslot=false.")
@click.option("--stop-on-first", is_flag=True, help="Stop at the first report.")
@click.option("--no-shrink", is_flag=True, help="Keep each report's schedule as found "
                                                "instead of shrinking it.")
@_format_options("check")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=DEFAULT_OUT,
              show_default=True, metavar="DIR", help="Where replay records are saved.")
@click.option("--full-trace", is_flag=True, help="Show every step of each report's "
                                                 "execution, not only the last 25 before it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress line; print only the "
                                                  "summary line.")
@_jobs_option("Worker processes that share the search.")
@_ray_option
@_cache_option
@handled
def check(patches, preset, configs, arch, scenario, strategy, preemptions, runs, seed,
          time_limit, max_executions, max_steps, knobs, stop_on_first, no_shrink,
          out_dir, full_trace, quiet, jobs, ray, no_cache, **outputs):
    _check_jobs(jobs)
    spec = api.CheckSpec(patches=list(patches) or ["upstream"], preset=preset,
                         config=_parse_config(configs), arch=arch, scenario=scenario,
                         strategy=strategy, knobs=_parse_knobs(knobs),
                         preemptions=preemptions, runs=runs, seed=seed, max_steps=max_steps,
                         max_executions=max_executions, time_limit=time_limit,
                         stop_on_first=stop_on_first, shrink=not no_shrink)
    label = f"{'+'.join(spec.patches)} {preset} {arch} {scenario}"
    try:
        with Ticker(_progress_enabled(quiet), label) as ticker:
            cr = api.run_check(spec, progress=ticker, jobs=jobs, ray=ray,
                               cache=cache.enabled(no_cache))
    except KeyboardInterrupt:
        click.echo("kmodel: interrupted before the check had a result", err=True)
        raise Exit(EXIT_INTERRUPTED)
    shown = _save_and_print(cr, Path(out_dir), full_trace, quiet)
    _write_outputs("check", outputs, cr, shown)
    click.echo(one_line_summary(cr) if quiet else render_summary(cr))
    _from_cache_note(int(cr.cached), 1)
    if cr.result.interrupted:
        click.echo("kmodel: interrupted: the above is what was found so far"
                   + (f"; replay records in {out_dir}/" if shown else ""), err=True)
        raise Exit(EXIT_INTERRUPTED)
    raise Exit(EXIT_REPORTS if cr.result.reports else EXIT_CLEAN)


# -- replay -----------------------------------------------------------------------------

@cli.command(context_settings=CONTEXT)
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--full-trace", is_flag=True, help="Show every step of the execution.")
@_format_options("replay")
@handled
def replay(file, full_trace, **outputs):
    """Re-run a saved replay record and print its report again.

    FILE is a replay record that `kmodel check` saved (or the "replay" object of a report
    in --json output).  The same model and schedule give the same report, byte for byte.

    \b
    Example:
      kmodel replay kmodel-out/upstream-rt-x86-oom-reap-sleep-in-atomic-1.json
    """
    try:
        raw = Path(file).read_text()
    except OSError as e:
        raise api.BadInput(f"{file}: {e.strerror}") from None
    try:
        record = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise api.BadInput(f"{file}: not a replay record: not JSON ({e})") from None
    if isinstance(record, dict) and isinstance(record.get("replay"), dict) \
            and "format" not in record:
        record = record["replay"]             # a report object from --json output
    try:
        cr = api.replay(record)
    except api.BadInput as e:
        raise api.BadInput(f"{file}: {e}") from None
    # api.replay has checked that the replay shows the recorded report (when the record
    # names one): print that one first, then whatever else the same execution reported
    expect = record.get("report")
    reps = list(cr.result.reports)
    if expect:
        key = (expect["kind"], expect["function"], expect["title"])
        match = [r for r in reps if r.key() == key]
        others = [r for r in reps if r.key() != key]
    else:
        match, others = reps, []
    for rep in match:
        click.echo(render_report(rep, cr.trace, full=full_trace, replay_path=file))
    if others:
        click.echo("The same execution also reported:\n")
        for rep in others:
            click.echo(render_report(rep, cr.trace, full=full_trace))
    if reps:
        _write_outputs("replay", outputs, cr, [((match or reps)[0], cr.trace, file)])
    steps = len(cr.trace or [])
    click.echo(f"kmodel: replayed {file}: {len(reps)} report(s) in {steps} steps; the "
               f"execution ended: {cr.outcome}")
    raise Exit(EXIT_REPORTS if reps else EXIT_CLEAN)


# -- explain ----------------------------------------------------------------------------

@cli.command(context_settings=CONTEXT)
@click.argument("name", metavar="NAME|FILE")
@click.option("--diff", "as_diff", is_flag=True,
              help="Show the design as a unified diff against the upstream model.")
@handled
def explain(name, as_diff):
    """What a design changes: its title, author, date and summary, the docstring of its
    module, and the kernel functions it overrides or adds.

    With --diff, the design as a unified diff against the upstream model: each function
    it overrides (upstream's body against the design's), each function and helper it
    adds, each field it sets -- what a reviewer reads first, and what goes into a mail.

    \b
    Examples:
      kmodel explain v1-raw-mn-lock
      kmodel explain v1-raw-mn-lock --diff
      kmodel explain examples/my_design.py
    """
    p = load(name)
    if as_diff:
        diff = design_diff(p)
        click.echo(diff if diff else f"kmodel: {p.name} changes nothing", nl=not diff)
        return
    mod = module_of(p)
    click.echo(f"{p.name}: {p.title}")
    if p.author or p.date:
        click.echo(f"  author: {p.author or '?'}    date: {p.date or '?'}")
    if p.summary:
        click.echo(f"\n{p.summary}")
    doc = inspect.getdoc(mod) if mod is not None else None
    if doc:
        click.echo("\n" + doc)
    if p.overrides:
        click.echo("\nOverrides:")
        for fn in p.overrides:
            src = getattr(REGISTRY.get(fn), "kernel_source", "?")
            click.echo(f"  {fn}  ({src})")
    if p.new:
        click.echo("\nAdds:")
        for d in p.new.values():
            cond = f", declared only with CONFIG_{d.config}=y" if d.config else ""
            stub = ", no stub" if d.config and not d.stub else ""
            click.echo(f"  {d.name}  ({d.source}{cond}{stub})")
    if p.fields:
        click.echo("\nSets:")
        for obj, attr, value in p.fields:
            click.echo(f"  {obj_name(obj)}.{attr} = {value_name(value)}")
    if not (p.overrides or p.new or p.fields):
        click.echo("\nChanges nothing.")


# -- matrix -----------------------------------------------------------------------------

def _csv(ctx, param, value):
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


MATRIX_HELP = """Every built-in design x {rt, nonrt} x {x86, arm64} over the built-in
scenarios, and the build of every design with MMU_NOTIFIER=n.

One row per design/preset/arch: its verdict (reports if any scenario reported; clean only
if every scenario was explored completely; else clean-so-far), the first report, the
executions and the time, and each scenario's verdict.  Each check stops at its first
report (--all-reports to explore on); --time caps each check, and a check that hit the
cap is marked not complete (~).

\b
Examples:
  kmodel matrix
  kmodel matrix --time 2 --designs upstream,v1-raw-mn-lock --arches x86
  kmodel matrix --markdown matrix.md --json matrix.json --junit matrix.xml
  kmodel matrix --jobs 8
  kmodel matrix --ray auto
  kmodel matrix --sweep 2
  kmodel matrix --sweep 3 --designs v1-raw-mn-lock --presets nonrt --time 10

The checks run --jobs at a time in worker processes (or on a Ray cluster with --ray); the
rows are the same as with --jobs 1, except for the times.

--sweep K is the false-alarm sweep: every composition of K activities instead of the
built-in scenarios (see README, "The sweep").

Exit status: 0 when the matrix ran (whatever it found; with --sweep: nothing outside the
documented upstream findings and every cell finished), 1 a --sweep that failed, 2 bad
input, 130 interrupted."""


@cli.command(context_settings=CONTEXT, help=MATRIX_HELP)
@click.option("--designs", callback=_csv, metavar="A,B", help="Designs [default: all "
                                                               "built-in].")
@click.option("--presets", callback=_csv, metavar="rt,nonrt", help="[default: rt,nonrt]")
@click.option("--arches", callback=_csv, metavar="x86,arm64", help="[default: x86,arm64]")
@click.option("--scenarios", callback=_csv, metavar="S,T",
              help="[default: every built-in scenario]")
@click.option("--time", "time_per_cell", type=click.FloatRange(min=0, min_open=True),
              default=30.0, show_default=True, metavar="SECONDS",
              help="Cap on each check (design x preset x arch x scenario).")
@click.option("--all-reports", is_flag=True, help="Explore on after a check's first "
                                                  "report.")
@click.option("--no-build", is_flag=True, help="Skip the MMU_NOTIFIER=n build table.")
@_format_options("matrix")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option("--sweep", "sweep_k", type=int, metavar="K",
              help="Instead of the scenarios: every composition of K activities (2 or 3) "
                   "of vcpu, memslot, madvise, munmap, reclaim, oom, mrelease, exit, "
                   "vm-close, each explored by DPOR within --time, else bounded to "
                   "--bound preemptions; --designs default to upstream.  Exit 1 if a "
                   "report outside the documented upstream findings, or a cell that "
                   "finished neither search.")
@click.option("--bound", type=click.IntRange(min=0), default=2, show_default=True,
              metavar="K", help="--sweep: preemption bound of a cell's second search.")
@_jobs_option("Checks run at once, in worker processes.")
@_ray_option
@_cache_option
@handled
def matrix(designs, presets, arches, scenarios, time_per_cell, all_reports, no_build,
           quiet, sweep_k, bound, jobs, ray, no_cache, **outputs):
    _check_jobs(jobs)
    if sweep_k is not None:
        return _sweep(sweep_k, designs, presets, arches, scenarios, time_per_cell, bound,
                      outputs.get("out_json"), outputs.get("out_markdown"), quiet, jobs,
                      ray)
    errors: list[tuple] = []
    with Ticker(_progress_enabled(quiet)) as ticker:
        def on_cell(i, total, spec, outcome):
            if outcome is None:
                ticker.relabel(f"[{i + 1}/{total}] {spec.patches[0]} {spec.preset} "
                               f"{spec.arch} {spec.scenario}")
            elif isinstance(outcome, BaseException):
                errors.append((spec, f"{type(outcome).__name__}: {outcome}"
                                     f"{where(outcome)}"))
        rows = run_matrix(designs, presets, arches, scenarios, time_per_cell,
                          all_reports, on_cell=on_cell, progress=ticker, jobs=jobs,
                          ray=ray, cache=cache.enabled(no_cache))
        interrupted = any(r.interrupted for r in rows)
        build_rows = [] if no_build or interrupted else \
            run_build_matrix(designs, (presets or ["rt"])[:1])
    print_table(rows, build_rows, time_per_cell)
    found = MatrixOutput(rows, build_rows, checks(rows, build_rows), errors)
    for fmt, path in _chosen("matrix", outputs):
        fmt.write_matrix(path, found)
    counts = summarize(rows)
    total_t = sum(r.elapsed_s for r in rows)
    click.echo(f"kmodel: matrix: {len(rows)} rows: " + ", ".join(
        f"{v} {k}" for k, v in counts.items() if v) + f"; {total_t:.1f} s")
    done = [cr for row in rows for cr in row.checks]
    _from_cache_note(sum(cr.cached for cr in done), len(done))
    if interrupted:
        click.echo("kmodel: interrupted: the rows above are what ran so far", err=True)
        raise Exit(EXIT_INTERRUPTED)


def _sweep(k, designs, presets, arches, scenarios, cap, bound, json_path, md_path, quiet,
           jobs, ray) -> None:
    """``kmodel matrix --sweep K``: the false-alarm sweep (``kmodel.sweep``), per design."""
    from dataclasses import asdict

    from . import sweep as sw
    n = len(sw.SWEEP_ACTIVITIES)
    if not 1 <= k <= n:
        raise api.BadInput(f"--sweep composes 1 to {n} activities, not {k}")
    for p in presets or ():
        if p not in PRESETS:
            raise api.unknown("preset", p, PRESETS)
    for a in arches or ():
        if a not in sw.ARCHES:
            raise api.unknown("arch", a, sw.ARCHES, "arches")
    for d in designs or ():
        if d not in ORDER and not os.path.isfile(d):
            raise api.unknown("design", d, ORDER)
    if scenarios:
        raise api.BadInput("--sweep makes its own compositions: leave out --scenarios")
    failed = False
    everything = []
    with Ticker(_progress_enabled(quiet)) as ticker:
        for d in designs or ["upstream"]:
            patches = ("upstream",) if d == "upstream" else ("upstream", d)

            def on_cell(cell, d=d):
                ticker.relabel(f"{d}: {cell.scenario} {cell.preset} {cell.arch}: "
                               f"{cell.outcome}")

            cells = sw.sweep(k, patches=patches, presets=tuple(presets or sw.PRESETS),
                             arches=tuple(arches or sw.ARCHES), cap=cap, bound=bound,
                             jobs=jobs, ray=ray, on_cell=on_cell)
            everything += [dict(asdict(c), design=d) for c in cells]
            click.echo(f"kmodel: sweep of {d}, {k} activities "
                       f"(cap {cap:g} s a search, bound {bound}):")
            for c in cells:
                if c.outcome != "clean-complete":
                    click.echo("  " + c.line())
            click.echo(sw.table(cells))
            failed |= not all(c.ok for c in cells)
    if json_path:
        Path(json_path).write_text(json.dumps(everything, indent=1))
    if md_path:
        Path(md_path).write_text("\n\n".join(sw.table([sw.SweepCell(**{
            k2: v for k2, v in c.items() if k2 != "design"}) for c in everything
            if c["design"] == d]) for d in designs or ["upstream"]) + "\n")
    if failed:
        raise Exit(EXIT_REPORTS)


def _register_realkernel() -> None:
    """kmodel repro / kmodel conform: the real-kernel package (kmodel.realkernel)."""
    from .realkernel.commands import conform, repro
    cli.add_command(repro)
    cli.add_command(conform)


_register_realkernel()


def main() -> None:
    """The console script: click's usage errors exit 2, Ctrl-C anywhere exits 130."""
    try:
        rv = cli.main(prog_name="kmodel", standalone_mode=False)
    except click.exceptions.Abort:            # click's name for a KeyboardInterrupt
        click.echo("kmodel: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        click.echo("kmodel: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(EXIT_SIGPIPE)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
