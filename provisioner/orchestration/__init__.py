"""Runs and site jobs: the only code that changes their state, and what it publishes."""
