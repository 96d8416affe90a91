"""The designs proposed in the thread, each a patch over the upstream model.

ORDER maps each design's stable name to its module, in the order the thread proposed
them.  `upstream` changes nothing.
"""

ORDER = {
    "upstream": "upstream",
    "v1-raw-mn-lock": "v1_raw_mn_lock",
    "raw-mmu-lock": "raw_mmu_lock",
    "atomic-count": "atomic_count",
    "defer-invalidation": "defer_invalidation",
    "oom-enter-unregister": "oom_enter_unregister",
    "oom-enter-deferred-detach": "oom_enter_deferred_detach",
    "after-oom-unregister-sync": "after_oom_unregister_sync",
    "after-oom-unregister-sync-fixed": "after_oom_unregister_sync_fixed",
    "v2-call-srcu": "v2_call_srcu",
}

# Not designs but debugging aids from the thread, usable with --patch.
AIDS = {
    "sean-nonblock-hack": "sean_nonblock_hack",
}
