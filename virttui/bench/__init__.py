"""Benchmarks: `python -m virttui.bench [--quick]` prints figures and ratios against baselines
measured in the same run. Benchmarks are not timed tests: CI runs the quick form only so
that they cannot rot, and never checks thresholds."""
