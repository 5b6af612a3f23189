"""Celery tasks: thin wrappers that hand work to orchestration and the steps."""
