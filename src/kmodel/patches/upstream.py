"""The kernel as it is: no change."""

from kmodel.patching import Patch

patch = Patch(
    name="upstream",
    title="mainline (v7.0) as modelled",
    summary="No change: the baseline every design is compared with.",
)
