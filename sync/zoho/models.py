"""State of the Zoho boundary shared by every process (DESIGN: per-process state is a bug)."""
