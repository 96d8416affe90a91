"""include/linux: the header-only pieces the model needs: READ_ONCE/WRITE_ONCE and plain
accesses (rwonce.h), atomic bitops, kernel.h's non_block sections, the hlists of list.h
and rculist.h, the mmu-notifier lockdep map."""
