"""`GET /metrics`: Prometheus text format, computed from the database when it is scraped.

Counters kept in process memory would be wrong here: runs are started by several gunicorn
processes and executed by many Celery processes on many machines. So nothing is counted
in memory; a collector reads aggregates from PostgreSQL (a few grouped queries over runs,
run events, webhook deliveries and the latest verifications), the queue's length from the
broker and the watchdog's sweeps from Redis, at scrape time. Every web process answers the
same numbers. Counters come from the append-only event log, so they only grow (unless a
workspace is deleted with its runs).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import case, func, select

from provisioner.engine.breaker import BreakerStatus
from provisioner.extensions import db
from provisioner.models import (
    DeliveryStatus,
    Run,
    RunEvent,
    RunStatus,
    RunStep,
    StepStatus,
    WebhookDelivery,
)
from provisioner.models.status import ACTIVE_RUN_STATUSES
from provisioner.models.types import utcnow
from provisioner.orchestration import outages, queue, verifications, watchdog

# Seconds; the steps take from a fraction of a second to a few minutes (setup wizard).
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FINISHES = {"run_completed", "run_partial", "run_failed", "run_cancelled"}
STEP_ENDS = {"step_completed": "completed", "step_failed": "failed"}
COUNTED = ("step_retrying", "step_waiting", watchdog.REQUEUED, watchdog.FAILED)
VERIFICATION_OUTCOMES = ("ok", "drifted", "failed", "never")

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape() -> Response:
    """Prometheus metrics: runs, steps, retries, watchdog (and its sweeps), webhooks,
    verifications, queue."""
    return Response(render(), content_type=CONTENT_TYPE_LATEST)


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return generate_latest(registry)


class DatabaseCollector(Collector):
    """Reads everything at collection time, inside the caller's app context."""

    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        yield from self._runs(now)
        yield from self._outcomes()
        yield from self._retries_and_watchdog()
        yield from self._webhooks()
        yield from _verifications()
        yield from _engine_outages()
        yield _long_running(now)
        yield from _sweeps()
        depth = queue.depth()
        if depth is not None:
            messages = GaugeMetricFamily(
                "provisioner_queue_messages",
                "Messages waiting in the step tasks' queue.",
                labels=["queue"],
            )
            messages.add_metric([current_app.extensions["celery"].conf.task_default_queue], depth)
            yield messages

    def _runs(self, now: datetime) -> Iterator[Metric]:
        rows = db.session.execute(
            select(
                Run.plan,
                Run.status,
                func.count(),
                func.min(func.coalesce(Run.queued_at, Run.created_at)),
            ).group_by(Run.plan, Run.status)
        ).all()
        started = CounterMetricFamily(
            "provisioner_runs_started", "Runs started, by plan.", labels=["plan"]
        )
        by_plan: dict[str, int] = defaultdict(int)
        active: dict[str, int] = {RunStatus.PENDING: 0, RunStatus.IN_PROGRESS: 0}
        oldest_pending: datetime | None = None
        for plan, status, count, oldest in rows:
            by_plan[plan] += count
            if status in active:
                active[status] += count
            if status == RunStatus.PENDING and oldest is not None:
                oldest_pending = min(oldest, oldest_pending or oldest)
        for plan, count in sorted(by_plan.items()):
            started.add_metric([plan], count)
        yield started
        gauge = GaugeMetricFamily(
            "provisioner_active_runs", "Runs pending or in progress now.", labels=["status"]
        )
        for state, count in active.items():
            gauge.add_metric([str(state)], count)
        yield gauge
        yield GaugeMetricFamily(
            "provisioner_oldest_pending_run_age_seconds",
            "Age of the oldest run whose chain no worker has started yet (queue lag); 0 if none.",
            value=(now - oldest_pending).total_seconds() if oldest_pending else 0,
        )

    def _outcomes(self) -> Iterator[Metric]:
        """Runs finished by plan and outcome; step attempt durations by step and outcome."""
        ms = RunEvent.duration_ms
        rows = db.session.execute(
            select(
                RunEvent.kind,
                RunEvent.step,
                Run.plan,
                func.count(),
                func.count(ms),
                func.coalesce(func.sum(ms), 0),
                *(func.sum(case((ms <= bound * 1000, 1), else_=0)) for bound in BUCKETS),
            )
            .join(Run, Run.id == RunEvent.run_id)
            .where(RunEvent.kind.in_(FINISHES | STEP_ENDS.keys()))
            .group_by(RunEvent.kind, RunEvent.step, Run.plan)
        ).all()
        finished = CounterMetricFamily(
            "provisioner_runs_finished",
            "Runs that reached a final state, by plan and outcome (a retried run counts again).",
            labels=["plan", "outcome"],
        )
        durations: dict[tuple[str, str], list[float]] = {}
        for kind, step, plan, count, timed, total_ms, *cumulative in rows:
            if kind in FINISHES:
                finished.add_metric([plan, kind.removeprefix("run_")], count)
                continue
            key = (step, STEP_ENDS[kind])
            sums = durations.setdefault(key, [0.0] * (len(BUCKETS) + 2))
            for i, value in enumerate((*cumulative, timed, total_ms / 1000.0)):
                sums[i] += value or 0
        yield finished
        histogram = HistogramMetricFamily(
            "provisioner_step_duration_seconds",
            "Duration of step attempts, by step and outcome.",
            labels=["step", "outcome"],
        )
        for (step, outcome), sums in sorted(durations.items()):
            *cumulative, count, total = sums
            buckets = [(floatToGoString(b), c) for b, c in zip(BUCKETS, cumulative, strict=True)]
            histogram.add_metric([step, outcome], [*buckets, ("+Inf", count)], total)
        yield histogram

    def _retries_and_watchdog(self) -> Iterator[Metric]:
        reason = RunEvent.data["reason"].as_string()
        rows = db.session.execute(
            select(RunEvent.kind, RunEvent.step, reason, func.count())
            .where(RunEvent.kind.in_(COUNTED))
            .group_by(RunEvent.kind, RunEvent.step, reason)
        ).all()
        retries = CounterMetricFamily(
            "provisioner_step_retries",
            "Retries scheduled, by step and reason (the error's class).",
            labels=["step", "reason"],
        )
        waits = CounterMetricFamily(
            "provisioner_step_waits",
            "Times a step was parked to wait for its engine, by step and reason.",
            labels=["step", "reason"],
        )
        actions: dict[tuple[str, str], int] = defaultdict(int)
        for kind, step, why, count in rows:
            if kind in ("step_retrying", "step_waiting"):
                counter = retries if kind == "step_retrying" else waits
                counter.add_metric([step or "", why or "unknown"], count)
            else:
                action = "requeue" if kind == watchdog.REQUEUED else "fail"
                actions[action, why or "unknown"] += count
        yield retries
        yield waits
        done = CounterMetricFamily(
            "provisioner_watchdog_actions",
            "Stuck runs the watchdog requeued or failed, by action and reason.",
            labels=["action", "reason"],
        )
        for (action, why), count in sorted(actions.items()):
            done.add_metric([action, why], count)
        yield done

    def _webhooks(self) -> Iterator[Metric]:
        rows = db.session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        )
        counts = {str(status): 0 for status in DeliveryStatus}
        counts.update(rows.all())
        gauge = GaugeMetricFamily(
            "provisioner_webhook_deliveries",
            "Webhook deliveries by status (pending ones are still being tried).",
            labels=["status"],
        )
        for status, count in counts.items():
            gauge.add_metric([status], count)
        yield gauge


def _verifications() -> Iterator[Metric]:
    """Provisioned workspaces by the outcome of their latest verification, and that
    verification's checks by step and state (one being verified counts as it was before)."""
    workspaces: Counter[str] = Counter(dict.fromkeys(VERIFICATION_OUTCOMES, 0))
    checks: Counter[tuple[str, str]] = Counter()
    for status, tally in verifications.outcomes().values():
        workspaces[status] += 1
        for step, states in (tally or {}).items():
            checks.update({(step, state): n for state, n in states.items()})
    gauge = GaugeMetricFamily(
        "provisioner_workspaces",
        "Provisioned workspaces by their latest verification (never: not verified yet).",
        labels=["verification"],
    )
    for outcome, count in workspaces.items():
        gauge.add_metric([outcome], count)
    yield gauge
    counts = GaugeMetricFamily(
        "provisioner_verification_checks",
        "Checks of the workspaces' latest verifications, by step and state.",
        labels=["step", "state"],
    )
    for (step, state), count in sorted(checks.items()):
        counts.add_metric([step, state], count)
    yield counts


def _sweeps() -> Iterator[Metric]:
    """The watchdog's sweeps (ran, or skipped while another ran) and what the latest one did."""
    last = watchdog.last_sweep()
    if last is None:
        return
    sweeps = CounterMetricFamily(
        "provisioner_watchdog_sweeps",
        "Watchdog sweeps, by outcome (skipped: another sweep held the lock).",
        labels=["outcome"],
    )
    for outcome in ("ran", "skipped"):
        sweeps.add_metric([outcome], last["sweeps"].get(outcome, 0))
    yield sweeps
    if last["at"] is None:
        return
    yield GaugeMetricFamily(
        "provisioner_watchdog_last_sweep_timestamp_seconds",
        "When the latest watchdog sweep ended (Unix time): alert when it falls behind.",
        value=last["at"],
    )
    yield GaugeMetricFamily(
        "provisioner_watchdog_last_sweep_duration_seconds",
        "How long the latest watchdog sweep took.",
        value=last["seconds"],
    )
    did = GaugeMetricFamily(
        "provisioner_watchdog_last_sweep",
        "What the latest watchdog sweep did or found (requeued_<reason>, dead_workers, …).",
        labels=["what"],
    )
    for what, count in sorted(last["counts"].items()):
        did.add_metric([what], count)
    yield did


def _long_running(now: datetime) -> Metric:
    limit = current_app.config["LONG_RUN_AFTER"]
    return GaugeMetricFamily(
        "provisioner_long_running_runs",
        f"Runs active for more than LONG_RUN_AFTER ({limit:.0f}) seconds: alert when above 0.",
        value=len(watchdog.long_running(now)),
    )


def _engine_outages() -> Iterator[Metric]:
    """Steps waiting for their engine now (by step), and the engine sites not available."""
    rows = db.session.execute(
        select(RunStep.name, func.count())
        .join(Run, Run.id == RunStep.run_id)
        .where(RunStep.status == StepStatus.WAITING, Run.status.in_(ACTIVE_RUN_STATUSES))
        .group_by(RunStep.name)
    ).all()
    waiting = GaugeMetricFamily(
        "provisioner_steps_waiting_for_engine",
        "Steps parked now until their engine site answers again, by step.",
        labels=["step"],
    )
    for name, count in sorted(rows):
        waiting.add_metric([name], count)
    yield waiting
    sites = GaugeMetricFamily(
        "provisioner_engine_sites_unavailable",
        "Engine sites whose circuit breaker is open or half-open now, by state.",
        labels=["state"],
    )
    counts = Counter(str(s.status) for s in outages.unavailable_sites())
    for state in (BreakerStatus.OPEN, BreakerStatus.HALF_OPEN):
        sites.add_metric([str(state)], counts[str(state)])
    yield sites
