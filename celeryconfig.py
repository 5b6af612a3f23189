"""Celery settings, read from the environment (see README, "Configuration")."""

import os

broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
result_backend = os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/1")
task_default_queue = os.environ.get("CELERY_DEFAULT_QUEUE", "provisioner")

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"

# A worker killed in the middle of a step loses nothing: the message is acknowledged only
# after the task ends, goes back to the queue if the worker process dies, and each worker
# process reserves one message at a time.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# Redis redelivers a message not acknowledged within this time. It must be well above the
# longest step (the setup wizard, ~14 s on a real site, 180 s allowed) plus the longest
# retry wait (retries wait on the worker, unacknowledged, up to STEP_RETRY_BACKOFF_MAX).
# How often a worker sweeps for such messages: about interval x throttle seconds.
broker_transport_options = {
    "visibility_timeout": int(os.environ.get("BROKER_VISIBILITY_TIMEOUT", "3600")),
    "unacked_restore_interval": int(os.environ.get("BROKER_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(os.environ.get("BROKER_RESTORE_THROTTLE", "10")),
}
broker_connection_retry_on_startup = True
broker_connection_timeout = 4

# Flower renders task events: sent, started, retried (with the reason), succeeded, failed.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
result_expires = 24 * 3600
worker_hijack_root_logger = False

# Site jobs of the bench backend go to BENCH_QUEUE, which only workers on the engine host
# consume (`celery -A provisioner worker -Q bench`); everything else to the default queue.
task_routes = ("provisioner.tasks.site_jobs.route",)

# Celery beat (`celery -A provisioner beat`, one process per deployment) runs the watchdog.
# A sweep not picked up before the next one is due is dropped: the next one does its work.
_watchdog_interval = float(os.environ.get("WATCHDOG_INTERVAL", "30"))
beat_schedule = {
    "watchdog": {
        "task": "provisioner.watchdog.sweep",
        "schedule": _watchdog_interval,
        "options": {"expires": _watchdog_interval},
    },
}
