"""lib/: the kernel's library code the model needs (dump_stack.c)."""
