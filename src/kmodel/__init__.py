"""kmodel: an executable model of the KVM MMU-notifier / OOM-reaper locking protocol,
with a checker that explores its interleavings."""

__version__ = "0.1.0"
