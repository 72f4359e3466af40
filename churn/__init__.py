"""Composition root: configuration schema and the `churn` command line."""
