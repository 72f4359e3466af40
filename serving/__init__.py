"""Serving: the model bundle as served, the scoring core, retention decisions, the daily list and the API."""
