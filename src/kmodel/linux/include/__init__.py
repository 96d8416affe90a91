"""include/linux: the header-only helpers the model needs (list.h and rculist.h hlists)."""
