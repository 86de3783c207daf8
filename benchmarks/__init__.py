"""Benchmarks: `python -m benchmarks` (the sync) and `python -m benchmarks.emulator`."""
