"""gunicorn settings, from the environment (PORT, WEB_CONCURRENCY, WEB_THREADS)."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads let one worker hold a Server-Sent Events stream and still answer other requests.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
accesslog = "-"
