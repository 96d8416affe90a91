"""One place per extension: output formats are registered (one module each in
report/formats/), and a design's new functions live in the design's own namespace."""

from __future__ import annotations

import pkgutil

import pytest

from kmodel.cli import cli
from kmodel.linux.kernel.core import REGISTRY, SOURCES
from kmodel.patches import AIDS, ORDER
from kmodel.patching import Patch, PatchError, applied, load
from kmodel.report import formats
from kmodel.report.formats import FORMATS, Format, offered_by, register


# -- output formats ---------------------------------------------------------------------

def test_every_module_in_formats_registers_one_format():
    modules = [m.name for m in pkgutil.iter_modules(formats.__path__)]
    assert sorted(modules) == sorted(FORMATS) == ["html", "json", "junit", "markdown"]


@pytest.mark.parametrize("command", ["check", "replay", "matrix"])
def test_each_command_offers_the_formats_registered_for_it(command):
    options = {o for p in cli.commands[command].params for o in p.opts}
    offered = {f"--{f.name}" for f in offered_by(command)}
    assert offered <= options
    # and nothing registered for another command only
    others = {f"--{f.name}" for f in FORMATS.values() if not f.offered_by(command)}
    assert not others & options
    assert {"check": {"--html", "--json", "--junit"}, "replay": {"--html"},
            "matrix": {"--json", "--junit", "--markdown"}}[command] == offered


def test_a_format_without_the_writer_its_command_needs_is_refused():
    with pytest.raises(ValueError, match="give write_matrix"):
        register(Format("csv", {"matrix": "Write a CSV."}))
    with pytest.raises(ValueError, match="no command 'list'"):
        register(Format("csv", {"list": "x"}, write_check=print))
    assert "csv" not in FORMATS


# -- a design's new functions -----------------------------------------------------------

def _all_designs() -> list[Patch]:
    return [load(n) for n in [*ORDER, *AIDS]]


def test_a_design_adds_functions_to_its_own_namespace_not_the_model():
    designs = _all_designs()
    assert not [name for name, call in REGISTRY.items()
                if call.impl.__module__.startswith("kmodel.patches")]
    # four designs each add their own mmu_notifier_oom_enter
    adders = {p.name: p.new["mmu_notifier_oom_enter"] for p in designs
              if "mmu_notifier_oom_enter" in p.new}
    assert set(adders) == {"oom-enter-unregister", "oom-enter-deferred-detach",
                           "after-oom-unregister-sync", "after-oom-unregister-sync-fixed",
                           "v2-call-srcu"}
    assert adders["oom-enter-unregister"].source == "include/linux/mmu_notifier.h"
    assert adders["v2-call-srcu"].source == "mm/mmu_notifier.c"
    assert adders["v2-call-srcu"].fn is not adders["after-oom-unregister-sync"].fn


def test_an_applied_design_s_functions_are_found_by_name_until_it_is_undone():
    unreg = load("oom-enter-unregister")
    load("v2-call-srcu")                 # loaded last: it must not decide the source
    assert "mmu_notifier_oom_enter" not in SOURCES
    with applied([unreg]):
        assert SOURCES["mmu_notifier_oom_enter"] == "include/linux/mmu_notifier.h"
        assert REGISTRY["mmu_notifier_oom_enter"] is unreg.new["mmu_notifier_oom_enter"].call
    assert "mmu_notifier_oom_enter" not in SOURCES
    assert "mmu_notifier_oom_enter" not in REGISTRY


def test_two_designs_that_add_the_same_function_do_not_compose():
    with pytest.raises(PatchError, match="oom-enter-unregister and v2-call-srcu both add "
                                         "mmu_notifier_oom_enter"):
        with applied([load("oom-enter-unregister"), load("v2-call-srcu")]):
            pass
    assert "mmu_notifier_oom_enter" not in REGISTRY        # undone


def test_a_later_patch_may_override_a_function_an_earlier_one_adds(tmp_path):
    mine = tmp_path / "barrier.py"
    mine.write_text(
        "from kmodel.patching import Patch\n"
        "patch = Patch(name='barrier', title='t')\n"
        "@patch.override('mmu_notifier_barrier')\n"
        "async def mmu_notifier_barrier():\n"
        "    pass\n")
    with pytest.raises(PatchError, match="not a modelled kernel function"):
        load(str(mine))
    v2 = load("v2-call-srcu")
    patch = load(str(mine), [v2])
    with applied([v2, patch]):
        assert REGISTRY["mmu_notifier_barrier"].impl is patch.overrides["mmu_notifier_barrier"]
    assert v2.new["mmu_notifier_barrier"].call.impl is v2.new["mmu_notifier_barrier"].fn
