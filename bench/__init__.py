"""Benchmarks of the fleet promotion bot: ``python -m bench.ack``, ``.e2e``, ``.fleet``."""
