"""drivers/: device drivers that subscribe to mm changes (secondary MMUs other than KVM)."""
