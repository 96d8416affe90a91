"""Scenario composition and knobs."""

import pytest

from kmodel import scenarios
from kmodel.api import BadInput, CheckSpec, run_check


def test_unknown_knob_is_bad_input_with_a_hint():
    with pytest.raises(BadInput, match=r"unknown knob 'pagez' \(did you mean pages\?\)"):
        run_check(CheckSpec(scenario="oom-reap", knobs={"pagez": 2}))
    with pytest.raises(BadInput, match="whole number"):
        run_check(CheckSpec(scenario="oom-reap", knobs={"pages": 0}))


def test_activities_compose_on_the_command_line():
    sdef = scenarios.resolve("oom,vcpu")
    assert sdef.activities == ("oom", "vcpu")
    with pytest.raises(KeyError, match="did you mean"):
        scenarios.resolve("oom,vcpuu")


def test_pages_knob_scales_the_victim_and_the_reaper_frees_all_of_it():
    for pages in (1, 3):
        cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                                 scenario="oom-reap-nomemslot", strategy="dpor",
                                 knobs={"pages": pages, "reap_hits_memslot": True}))
        assert cr.verdict == "clean" and cr.result.complete
        assert cr.result.metrics["victim_pages"] == [2 * pages + 1, 2 * pages + 1]
        assert cr.result.metrics["victim_pages_freed"] == [2 * pages + 1, 2 * pages + 1]


def test_shared_guest_memory_is_skipped_by_the_reaper():
    cr = run_check(CheckSpec(patches=["upstream"], preset="nonrt",
                             scenario="oom-reap-nomemslot", strategy="dpor"))
    # only QEMU's private heap page is reaped; the two shared guest VMAs are skipped
    assert cr.result.metrics["victim_pages_freed"] == [1, 1]
