"""fs/: open files, file descriptors and the ioctl entry point."""
