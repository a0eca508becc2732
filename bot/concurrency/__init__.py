"""Concurrency primitives shared by every layer: bounded fan-out (``aio``), the CPU worker
thread for parsing (``cpu``) and re-entrant per-key locks (``locks``)."""
