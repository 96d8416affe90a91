"""``kmodel repro`` and ``kmodel conform``: the command-line side of the real-kernel
package (kmodel/cli.py registers them)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import env, generate

EXIT_BAD = 2


def _fail(msg: str) -> None:
    click.echo(f"kmodel: {msg}", err=True)
    sys.exit(EXIT_BAD)


def _reproducer(target: str, tries: int, knobs=None):
    """A built-in scenario or activities, or a replay record's file."""
    p = Path(target)
    if target.endswith(".json") or p.is_file():
        try:
            record = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            _fail(f"cannot read replay record {target}: {e}")
        return generate.from_replay(record, name=p.stem, tries=tries), record
    return generate.from_scenario(target, knobs, tries=tries), None


@click.command("repro")
@click.argument("scenario")
@click.option("-o", "--out", "out_dir", default=None, metavar="DIR",
              help="Write repro.c there (default: kmodel-out/repro-SCENARIO).")
@click.option("--tries", default=1, type=click.IntRange(1, 1000), show_default=True,
              help="How many times the program repeats the attempt.")
def repro(scenario, out_dir, tries):
    """Write a C reproducer of SCENARIO (a scenario, activities, or a replay record
    REPLAY.json) for a real KVM host, and print its build line."""
    try:
        r, _record = _reproducer(scenario, tries)
    except generate.ReproError as e:
        _fail(str(e))
    out = Path(out_dir or f"kmodel-out/repro-{r.name.replace(',', '-')}")
    src, line = generate.write(r, out)
    click.echo(f"kmodel: wrote {src}")
    for n in r.notes:
        click.echo(f"  note: {n}")
    click.echo(f"build: {line}")
    click.echo(f"run (as root): {out / 'repro'} [--tries N]")


@click.command("conform")
@click.argument("scenario")
@click.option("--tries", default=1, type=click.IntRange(1, 20), show_default=True)
def conform(scenario, tries):
    """Run SCENARIO's reproducer here, under the kernel's tracepoints, and compare the
    kernel's stacks with the model's call chains.  Exit 0 if they agree, 1 if not, 2 if
    this machine lacks something (one line says what)."""
    from . import conform as cf
    try:
        _r, record = _reproducer(scenario, tries)
        c = cf.run(scenario if record is None else record["scenario"], record=record,
                   tries=tries)
    except env.Missing as e:
        _fail(f"cannot run conformance: {e}")
    except generate.ReproError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        click.echo("kmodel: interrupted (tracing and the reproducer stopped)", err=True)
        sys.exit(130)
    click.echo(c.output.rstrip())
    click.echo("")
    click.echo(cf.render(c.rows), nl=False)
    if c.missing_events:
        click.echo("tracepoints this kernel lacks: " + ", ".join(c.missing_events))
    click.echo(cf.splat_summary(c))
    bad = c.disagreements
    click.echo(f"kmodel: conform {c.scenario}: {len(c.rows)} paths, "
               f"{sum(r.agreement == 'yes' for r in c.rows)} agree, {len(bad)} disagree, "
               f"{sum(r.agreement == 'not seen in the kernel' for r in c.rows)} not seen in "
               f"the kernel, {sum(r.agreement == 'not in the model' for r in c.rows)} not in "
               f"the model; {c.seconds:.1f} s")
    sys.exit(1 if bad or c.returncode else 0)
