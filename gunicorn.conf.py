"""gunicorn settings, from the environment (PORT, WEB_CONCURRENCY, WEB_THREADS)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads overlap requests that wait on PostgreSQL; streams are the live process's, never these.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
accesslog = "-"
