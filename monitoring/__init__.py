"""Monitoring: the prediction log, Evidently drift and performance reports, alerts."""
