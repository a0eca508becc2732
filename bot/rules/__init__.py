"""Pure rules: verdicts that carry their reasons (no I/O; the clock is passed in)."""
