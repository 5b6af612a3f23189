"""Logs, metrics and the context (correlation id, tenant, run, step) that ties them together."""
