"""Bulk recovery (`POST /api/v1/provisioning/runs/continue`, `provisioning continue-failed`):
runs made to fail for real by engine faults, continued by filters, completed by a real worker.

Every call names `since` (the test's start): runs of earlier tests are never picked.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
import requests

from provisioner.errors import Conflict
from provisioner.extensions import db
from provisioner.models import AuditEntry, Run, RunStatus
from provisioner.models.types import utcnow
from provisioner.orchestration import runs
from tests.helpers import events_of, new_tenant, start, steps_of, wait_run
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration
BULK = "/api/v1/provisioning/runs/continue"
COMPANY = ("POST", "^/api/resource/Company$")
WAREHOUSE = ("POST", "^/api/resource/Warehouse$")  # the Main Store first: critical
POS_SESSION = ("POST", "^/api/resource/POS Opening Entry$")  # open_pos_session: not critical


def fail_at(sim, call, tenant, plan: str = "BASIC") -> Run:
    """A run of `tenant` whose `call` the engine refuses once (417, not retried)."""
    method, path = call
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", method=method,
                  path=path, count=1, message="refused for the test")  # fmt: skip
    run = wait_run(start(tenant, plan))
    assert run.status in (RunStatus.FAILED, RunStatus.PARTIAL), steps_of(run)
    return run


def pairs(entries) -> set[tuple[str, str]]:
    return {(e["tenant_id"], e["run_id"]) for e in entries}


def pair(run: Run) -> tuple[str, str]:
    return (str(run.tenant_id), str(run.id))


def continues(run: Run) -> list[AuditEntry]:
    return list(
        db.session.execute(
            db.select(AuditEntry).where(
                AuditEntry.target == str(run.id), AuditEntry.action == "continue"
            )
        ).scalars()
    )


def status_of(run: Run) -> str:
    db.session.expire_all()
    return db.session.get(Run, run.id).status


def test_runs_failed_at_one_step_dry_run_then_continue_once(quiet, worker, sim, admin_api):
    since = utcnow().isoformat()
    a = fail_at(sim, WAREHOUSE, new_tenant())
    b = fail_at(sim, WAREHOUSE, new_tenant())
    c = fail_at(sim, COMPANY, new_tenant())
    body = {"failed_step": "step_4_warehouses", "since": since}  # the page's step identifier

    dry = admin_api.post(BULK, json={**body, "dry_run": True})

    assert dry.status_code == 200, dry.json
    assert (dry.json["matched"], dry.json["dry_run"], dry.json["skipped"]) == (2, True, [])
    assert pairs(dry.json["continued"]) == {pair(a), pair(b)}
    assert {status_of(a), status_of(b)} == {RunStatus.FAILED}
    assert not continues(a)
    assert not events_of(a.id, kind="run_continue")

    done = admin_api.post(BULK, json=body)
    again = admin_api.post(BULK, json=body)

    assert done.status_code == 200, done.json
    assert (done.json["matched"], done.json["dry_run"], done.json["skipped"]) == (2, False, [])
    assert pairs(done.json["continued"]) == {pair(a), pair(b)}
    # The same request again: both runs are active or completed now, so neither matches.
    assert again.status_code == 200, again.json
    assert (again.json["matched"], again.json["continued"]) == (0, [])
    for run in (a, b):
        assert wait_run(run.id).status == RunStatus.COMPLETED
        [entry] = continues(run)
        assert entry.actor == admin_api.user.email
        assert entry.details == {
            "bulk": {"status": ["FAILED"], "failed_step": "create_warehouses", "since": since,
                     "limit": 100},
        }  # fmt: skip
        assert len(events_of(run.id, kind="run_continue")) == 1
    assert status_of(c) == RunStatus.FAILED
    assert not continues(c)


def test_only_the_runs_of_one_engine_site(quiet, worker, sim, simulator_server, admin_api):
    made = requests.post(
        f"{simulator_server.url}/__simulator__/sites",
        json={"site": "bulk-own.example.com", "fresh": False},
        timeout=10,
    ).json()
    own = new_tenant()
    pointed = admin_api.put(f"/api/v1/tenants/{own.id}/engine", json={
        "url": simulator_server.url, "site": made["site"],
        "api_key": made["api_key"], "api_secret": made["api_secret"],
    })  # fmt: skip
    assert pointed.status_code == 200, pointed.json
    since = utcnow().isoformat()
    on_own = fail_at(sim, COMPANY, own)
    on_shared = fail_at(sim, COMPANY, new_tenant())

    by_own = admin_api.post(BULK, json={"engine_site": "BULK-own.example.com", "since": since})
    shared_site = urlsplit(simulator_server.url).hostname  # no ERPNEXT_SITE: the URL's host
    by_shared = admin_api.post(BULK, json={"engine_site": shared_site, "since": since})

    assert by_own.status_code == 200, by_own.json
    assert (by_own.json["matched"], pairs(by_own.json["continued"])) == (1, {pair(on_own)})
    assert by_shared.status_code == 200, by_shared.json
    assert (by_shared.json["matched"], pairs(by_shared.json["continued"])) == (1, {pair(on_shared)})
    assert wait_run(on_own.id).status == RunStatus.COMPLETED
    assert wait_run(on_shared.id).status == RunStatus.COMPLETED
    company_posts = [c["site"] for c in sim.calls() if c["method"] == "POST"
                     and c["path"] == "/api/resource/Company"]  # fmt: skip
    assert company_posts.count("bulk-own.example.com") == 2  # refused, then continued


def test_a_time_range_the_latest_run_only_and_the_limit(quiet, worker, sim, admin_api):
    since = utcnow().isoformat()
    early = fail_at(sim, COMPANY, new_tenant())
    twice = new_tenant()
    superseded = fail_at(sim, COMPANY, twice)
    middle = utcnow().isoformat()
    late = fail_at(sim, COMPANY, new_tenant())
    newest = fail_at(sim, COMPANY, twice)  # a newer run of the same workspace

    before = admin_api.post(BULK, json={"since": since, "until": middle})
    with pytest.raises(Conflict, match="a newer run of this workspace exists"):
        runs.resume(superseded.id, "tests", kind="continue")
    first = admin_api.post(BULK, json={"since": middle, "limit": 1})
    second = admin_api.post(BULK, json={"since": middle, "limit": 1})

    # Before the middle: the superseded run finished there too, but it is not the latest.
    assert (before.json["matched"], pairs(before.json["continued"])) == (1, {pair(early)})
    # After it, the oldest failure first, one per call.
    assert (first.json["matched"], pairs(first.json["continued"])) == (2, {pair(late)})
    assert (second.json["matched"], pairs(second.json["continued"])) == (1, {pair(newest)})
    for run in (early, late, newest):
        assert wait_run(run.id).status == RunStatus.COMPLETED
    assert status_of(superseded) == RunStatus.FAILED
    assert not continues(superseded)


def test_partial_runs_and_one_with_nothing_left_to_continue(quiet, worker, sim, admin_api):
    since = utcnow().isoformat()
    partial = fail_at(sim, POS_SESSION, new_tenant(), plan="FULL_POS")
    settled = fail_at(sim, POS_SESSION, new_tenant(), plan="FULL_POS")
    runs.skip(settled.id, "open_pos_session", "tests")  # still PARTIAL, nothing to rerun

    failed_only = admin_api.post(BULK, json={"since": since})
    answer = admin_api.post(BULK, json={"since": since, "status": ["PARTIAL"]})

    assert (failed_only.json["matched"], failed_only.json["continued"]) == (0, [])
    assert answer.json["matched"] == 2
    assert pairs(answer.json["continued"]) == {pair(partial)}
    assert answer.json["skipped"] == [{
        "tenant_id": str(settled.tenant_id), "run_id": str(settled.id),
        "reason": "no step of this run needs a continue",
    }]  # fmt: skip
    assert wait_run(partial.id).status == RunStatus.COMPLETED
    assert status_of(settled) == RunStatus.PARTIAL
    assert not continues(settled)


def test_two_identical_calls_at_once_continue_each_run_once(quiet, worker, sim, admin_api):
    since = utcnow().isoformat()
    failed = [fail_at(sim, COMPANY, new_tenant()) for _ in range(3)]
    gate = threading.Barrier(2)
    answers = []

    def call() -> None:
        with quiet.app_context():
            api = Api(quiet.test_client(), admin_api.user)
            gate.wait()
            answers.append(api.post(BULK, json={"since": since}).json)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    continued = [p for answer in answers for p in pairs(answer["continued"])]
    assert sorted(continued) == sorted(pair(run) for run in failed)  # each once, by one call
    for answer in answers:  # what the other call had continued first is skipped, not an error
        assert answer["matched"] == len(answer["continued"]) + len(answer["skipped"])
        assert all("nothing to continue" in s["reason"] for s in answer["skipped"])
    for run in failed:
        assert wait_run(run.id).status == RunStatus.COMPLETED
        assert len(continues(run)) == 1


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(args=["provisioning", "continue-failed", *args])
        assert (result.exit_code == 0) is ok, result.output
        return result.output

    return invoke


def test_the_cli_continues_by_the_same_filters(quiet, cli, worker, sim):
    since = utcnow().isoformat()
    run = fail_at(sim, WAREHOUSE, new_tenant())
    filters = ("--failed-step", "create_warehouses", "--since", since)

    dry = cli(*filters, "--dry-run")
    assert "1 matched: 1 would continue, 0 skipped, 0 beyond --limit" in dry
    assert f"run {run.id}" in dry
    assert "nothing was changed" in dry
    assert status_of(run) == RunStatus.FAILED

    done = cli(*filters)
    assert "1 matched: 1 continued, 0 skipped" in done
    assert f"{run.tenant.slug}  run {run.id}" in done
    assert wait_run(run.id).status == RunStatus.COMPLETED
    [entry] = continues(run)
    assert entry.actor.startswith("cli:")
    assert entry.details["bulk"]["failed_step"] == "create_warehouses"
    assert "0 matched" in cli(*filters)

    backwards = ("--since", since, "--until", "2000-01-01T00:00:00+00:00")
    assert "must not be before since" in cli(*backwards, ok=False)
    assert "Invalid value for '--status'" in cli("--status", "COMPLETED", ok=False)
    assert "failed_step" in cli("--failed-step", "no_such_step", ok=False)
