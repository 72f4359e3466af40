"""Reproducible speed and quality benchmarks; not part of the test run."""
