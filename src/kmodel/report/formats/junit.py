"""JUnit XML for CI (``--junit FILE``): one testcase per design x preset x arch x scenario.

A check that reported is a failure carrying the reports' text; a check interrupted, or
one that crashed, is an error; a check that stopped at a limit before it was complete
passes with a note in system-out (nothing was found, but not everything was explored).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from . import Format, register


def case_name(spec) -> tuple[str, str]:
    """(classname, name): ``kmodel.<designs>`` and ``<preset>/<arch>/<scenario>``."""
    designs = "+".join(Path(p).stem if p.endswith(".py") else p for p in spec.patches)
    overrides = "".join(f",{k}={'y' if v else 'n'}" for k, v in spec.config.items())
    return f"kmodel.{designs}", f"{spec.preset}{overrides}/{spec.arch}/{spec.scenario}"


def to_element(results, errors=(), suite_name: str = "kmodel") -> ET.Element:
    """``results``: CheckResults; ``errors``: (CheckSpec, message) pairs of checks that
    crashed."""
    suites = ET.Element("testsuites", name=suite_name)
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    n = failures = errs = 0
    total = 0.0
    for cr in results:
        cls, name = case_name(cr.spec)
        r = cr.result
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name,
                           time=f"{r.elapsed_s:.3f}")
        n += 1
        total += r.elapsed_s
        if r.reports:
            failures += 1
            first = r.reports[0]
            f = ET.SubElement(tc, "failure", type=first.kind,
                              message=f"{first.title} in {first.function} "
                                      f"({len(r.reports)} report(s))")
            f.text = "\n\n".join(rep.text for rep in r.reports)
        elif r.interrupted:
            errs += 1
            ET.SubElement(tc, "error", type="interrupted",
                          message="interrupted before the check was complete")
        out = ET.SubElement(tc, "system-out")
        out.text = (f"verdict: {cr.verdict}; strategy {cr.strategy_used}; "
                    f"{r.executions} executions, {r.classes} classes; complete: "
                    f"{'yes' if r.complete else 'no'}")
    for spec, message in errors:
        cls, name = case_name(spec)
        tc = ET.SubElement(suite, "testcase", classname=cls, name=name, time="0")
        n += 1
        errs += 1
        e = ET.SubElement(tc, "error", type="exception", message=message.splitlines()[0]
                          if message else "error")
        e.text = message
    for el in (suites, suite):
        el.set("tests", str(n))
        el.set("failures", str(failures))
        el.set("errors", str(errs))
        el.set("time", f"{total:.3f}")
    return suites


def dumps(results, errors=(), suite_name: str = "kmodel") -> str:
    root = to_element(results, errors, suite_name)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def write(path, results, errors=(), suite_name: str = "kmodel") -> None:
    Path(path).write_text(dumps(results, errors, suite_name))


register(Format(
    "junit",
    {"check": "Write JUnit XML (one testcase).",
     "matrix": "Write JUnit XML, one testcase per check."},
    write_check=lambda path, cr, shown: write(path, [cr]),
    write_matrix=lambda path, out: write(path, out.checks, out.errors)))
