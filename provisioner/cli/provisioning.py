"""`flask --app wsgi provisioning status|start|retry|cancel|verify|repair TENANT`, and
`provisioning continue-failed` (the filters of `POST /api/v1/provisioning/runs/continue`),
for operators.

TENANT is a workspace's id or slug. The commands go through orchestration as the API does,
and leave the same audit entries, with the actor `cli:<login>`.
"""

from __future__ import annotations

import getpass
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from flask.cli import AppGroup
from marshmallow import ValidationError
from sqlalchemy import select

from provisioner.errors import Conflict, InvalidTransition, PlanError, QueueUnavailable
from provisioner.extensions import db
from provisioner.models import Run, Tenant, Verification, latest_run
from provisioner.models.status import ERRORED_STEP_STATUSES
from provisioner.models.verification import ACTIVE_VERIFICATION_STATUSES
from provisioner.orchestration import recovery, runs, verifications
from provisioner.orchestration.plans import PLAN_NAMES
from provisioner.schemas.recovery import BulkContinueSchema
from provisioner.schemas.run import StartSchema, status_document
from provisioner.steps import STEP_NAMES

provisioning = AppGroup("provisioning", help="Provision workspaces and steer their runs.")
TENANT = click.argument("tenant")


@provisioning.command("status")
@TENANT
@click.option("--json", "as_json", is_flag=True, help="The API's status document instead.")
def status(tenant: str, as_json: bool) -> None:
    """Show the workspace's latest run, step by step."""
    found = _tenant(tenant)
    run = latest_run(found.id, with_steps=True)
    if run is None:
        click.echo(f"{found.slug}: not provisioned yet ({found.provisioning_status})")
    elif as_json:
        click.echo(json.dumps(status_document(run), indent=2))
    else:
        _show(found, run)


@provisioning.command("start")
@TENANT
@click.option("--plan", type=click.Choice(PLAN_NAMES), default="FULL_POS", show_default=True)
@click.option("--step", "steps", multiple=True, type=click.Choice(STEP_NAMES), help="CUSTOM")
@click.option("--demo-data", is_flag=True, help="Also create demo items.")
@click.option("--no-pos-store", is_flag=True, help="No separate POS store warehouse.")
@click.option("--template", help="Business template (default: the workspace's category).")
def start(
    tenant: str,
    *,
    plan: str,
    steps: tuple[str, ...],
    demo_data: bool,
    no_pos_store: bool,
    template: str | None,
) -> None:
    """Start a run."""
    found = _tenant(tenant)
    body = {
        "provisioning_type": plan,
        "include_demo_data": demo_data,
        "pos_store_enabled": not no_pos_store,
        "template": template,
        "steps": list(steps) or None,
    }
    with _refusals():
        options = StartSchema().load({k: v for k, v in body.items() if v is not None})
        plan, names = options.pop("provisioning_type"), options.pop("steps")
        options["template"] = options["template"] or found.category
        request = runs.StartRequest(plan=plan, steps=names, options=options)
        _steer(found, lambda: runs.start(found, request, _actor()))


@provisioning.command("retry")
@TENANT
@click.option("--step", type=click.Choice(STEP_NAMES), help="Rerun this step, then the rest.")
def retry(tenant: str, step: str | None) -> None:
    """Rerun the failed steps of the latest run (or one named step), then the rest."""
    found = _tenant(tenant)
    run_id = _latest(found).id
    with _refusals():
        _steer(found, lambda: runs.resume(run_id, _actor(), kind="retry", step_name=step))


@provisioning.command("cancel")
@TENANT
def cancel(tenant: str) -> None:
    """Cancel the active run: its tasks are revoked, no further step starts."""
    found = _tenant(tenant)
    run_id = _latest(found).id
    with _refusals():
        _steer(found, lambda: runs.cancel(run_id, _actor()))


@provisioning.command("verify")
@TENANT
@click.option("--wait", is_flag=True, help="Wait until it is done and show its checks.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds --wait waits at most.")
def verify(tenant: str, wait: bool, timeout: float) -> None:
    """Verify the workspace's documents in the engine (a worker does it)."""
    found = _tenant(tenant)
    with _refusals():
        requested = verifications.request(found, _actor())
    verification_id = requested.verification.id
    again = " (already under way)" if not requested.created else ""
    click.echo(f"verification {verification_id}  {requested.verification.status}{again}")
    if not wait:
        return
    deadline = time.monotonic() + timeout
    while True:
        db.session.expire_all()
        done = db.session.get(Verification, verification_id)
        if done is None or done.status not in ACTIVE_VERIFICATION_STATUSES:
            break
        if time.monotonic() > deadline:
            raise click.ClickException(f"still {done.status} after {timeout:g} s")
        time.sleep(0.5)
    if done is None:
        raise click.ClickException("the verification is gone")
    _show_verification(done)
    if done.status != "ok":
        raise SystemExit(1)


@provisioning.command("repair")
@TENANT
def repair(tenant: str) -> None:
    """Start a REPAIR run of exactly the steps the latest verification found drifted."""
    found = _tenant(tenant)
    with _refusals():
        _steer(found, lambda: verifications.repair(found, _actor()))


@provisioning.command("continue-failed")
@click.option("--engine-site", help="Only workspaces whose runs use this engine site (its name).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(recovery.CONTINUABLE),
    help="Runs that ended so (repeatable; default FAILED).",
)
@click.option("--failed-step", help="Only runs in which this step failed (either vocabulary).")
@click.option("--since", help="Only runs that finished at or after this (ISO 8601, with offset).")
@click.option("--until", help="Only runs that finished before this (ISO 8601, with offset).")
@click.option("--limit", type=int, default=100, show_default=True, help="Most runs to continue.")
@click.option("--dry-run", is_flag=True, help="Show what would be continued; change nothing.")
def continue_failed(
    *,
    engine_site: str | None,
    statuses: tuple[str, ...],
    failed_step: str | None,
    since: str | None,
    until: str | None,
    limit: int,
    dry_run: bool,
) -> None:
    """Continue the latest run of every workspace that matches the filters."""
    body = {
        "engine_site": engine_site,
        "status": list(statuses) or None,
        "failed_step": failed_step,
        "since": since,
        "until": until,
        "limit": limit,
        "dry_run": dry_run,
    }
    with _refusals():
        filters = BulkContinueSchema().load({k: v for k, v in body.items() if v is not None})
    filters.pop("dry_run")
    _show_report(recovery.continue_runs(recovery.Filters(**filters), _actor(), dry_run=dry_run))


def _steer(tenant: Tenant, command: Callable[[], Run]) -> None:
    """Run a command (it commits, with its audit entry), then show the run as it is now."""
    run_id = command().id
    db.session.expire_all()
    _show(tenant, db.session.get(Run, run_id))


@contextmanager
def _refusals() -> Iterator[None]:
    """What orchestration refuses, as a one-line error and exit status 1."""
    try:
        yield
    except Conflict as exc:
        raise click.ClickException(exc.message) from None
    except (PlanError, InvalidTransition) as exc:
        raise click.ClickException(str(exc)) from None
    except ValidationError as exc:
        raise click.ClickException(json.dumps(exc.normalized_messages())) from None
    except QueueUnavailable:
        raise click.ClickException("the task queue is unreachable; nothing was changed") from None


def _tenant(ref: str) -> Tenant:
    try:
        tenant = db.session.get(Tenant, uuid.UUID(ref))
    except ValueError:
        tenant = db.session.execute(select(Tenant).where(Tenant.slug == ref)).scalar_one_or_none()
    if tenant is None:
        raise click.ClickException(f"no workspace {ref!r} (give its id or its slug)")
    return tenant


def _latest(tenant: Tenant) -> Run:
    run = latest_run(tenant.id)
    if run is None:
        raise click.ClickException(f"{tenant.slug} has not been provisioned yet")
    return run


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _show(tenant: Tenant, run: Run | None) -> None:
    if run is None:
        raise click.ClickException("the run is gone")
    click.echo(f"{tenant.name} ({tenant.slug}, {tenant.id})")
    click.echo(f"run {run.id}  {run.plan}  {run.status}  {run.progress}%")
    for step in run.steps:
        took = f"{step.duration_ms} ms" if step.duration_ms is not None else ""
        manual = f" ({step.manual_attempts} manual)" if step.manual_attempts else ""
        click.echo(
            f"  {step.position:>2} {step.name:<26} {step.status:<12}"
            f" {step.attempts} attempts{manual} {took}".rstrip()
        )
        if step.error and step.status in ERRORED_STEP_STATUSES:
            click.echo(f"       {step.error.get('message', '')}")
        if step.status == "waiting" and step.next_attempt_at:
            when = step.next_attempt_at.isoformat(timespec="seconds")
            click.echo(f"       waiting for the engine; it is asked again at {when}")


def _show_report(report: recovery.Report) -> None:
    done = "would continue" if report.dry_run else "continued"
    beyond = report.matched - len(report.continued) - len(report.skipped)
    click.echo(
        f"{report.matched} matched: {len(report.continued)} {done}, "
        f"{len(report.skipped)} skipped, {beyond} beyond --limit"
        + ("  (dry run: nothing was changed)" if report.dry_run else "")
    )
    for outcome in report.continued:
        click.echo(f"  {done:<14} {outcome.tenant_slug}  run {outcome.run_id}")
    for outcome in report.skipped:
        click.echo(f"  {'skipped':<14} {outcome.tenant_slug}  run {outcome.run_id}")
        click.echo(f"  {'':<14} {outcome.reason}")


def _show_verification(verification: Verification) -> None:
    when = verification.checked_at.isoformat(timespec="seconds") if verification.checked_at else ""
    click.echo(f"{verification.status}  checked {when}  {verification.engine_reads} engine reads")
    if verification.error:
        click.echo(f"  {verification.error}")
    for check in verification.checks or []:
        click.echo(f"  {check['state']:<8} {check['step']:<26} {check['doctype']} {check['name']}")
        if check["state"] != "ok":
            click.echo(f"           {check['message']}")
