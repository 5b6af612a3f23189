"""Site jobs with SITE_BACKEND=bench: routed to their own queue, run by a worker that alone
consumes it (the engine host's), against a stand-in `bench`; cancel stops the command."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.extensions import db
from provisioner.models import TenantStatus
from provisioner.orchestration import engines
from tests.bench_standin import StandInBench, alive, install
from tests.conftest import QUEUE
from tests.helpers import new_tenant
from tests.integration.site_job_helpers import JOBS, events, wait_job
from tests.workers import WorkerPool

pytestmark = pytest.mark.integration
ROOT_PASSWORD = "db-root-secret"


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> StandInBench:
    return install(tmp_path_factory.mktemp("engine-host"))


@pytest.fixture(scope="module")
def bench_worker(app, standin, tmp_path_factory):
    """A worker of the engine host: bench backend, consuming only the bench queue."""
    queue = f"{QUEUE}-bench"
    env = {
        "SITE_BACKEND": "bench",
        "BENCH_QUEUE": queue,
        "BENCH_PATH": str(standin.path),
        "BENCH_DIR": str(standin.directory),
        "BENCH_DB_ROOT_PASSWORD": ROOT_PASSWORD,
        "BENCH_TIMEOUT": "60",
    }
    saved = {name: app.config[name] for name in ("SITE_BACKEND", "BENCH_QUEUE")}
    app.config.update(SITE_BACKEND="bench", BENCH_QUEUE=queue)  # where the API publishes
    pool = WorkerPool(app, queue, Path(tmp_path_factory.mktemp("bench-worker")))
    pool.started_once = True  # no purge: that would empty the session's default queue
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        pool.start(concurrency=1)
    yield pool
    pool.stop_all()
    app.config.update(saved)


@pytest.fixture
def bench(standin, bench_worker) -> StandInBench:
    standin.reset()
    return standin


def start_job(api, tenant, job_type: str) -> str:
    answer = api.post(JOBS, json={"tenant_id": str(tenant.id), "job_type": job_type})
    assert answer.status_code == 201, answer.json
    return answer.json["id"]


def test_bench_jobs_run_on_the_engine_host_worker(admin_api, bench):
    tenant = new_tenant()
    site = f"{tenant.slug}.localhost"

    created = wait_job(start_job(admin_api, tenant, "create_site"))

    assert created.status == "completed", created.error
    assert [argv[:2] for argv in bench.argvs()] == [
        ["new-site", site], ["--site", site], ["--site", site],
    ]  # fmt: skip
    db.session.refresh(tenant)
    credentials = engines.credentials_for(tenant)
    assert (tenant.status, credentials.site) == (TenantStatus.ACTIVE, site)
    assert (credentials.api_key, credentials.api_secret) == ("standin-key", "standin-secret")
    log = [(e.kind, e.message) for e in events(created)]
    assert ("output", "Installing erpnext...") in log
    assert any("--admin-password *** --db-root-password ***" in m for _, m in log)
    assert not any(s in m for _, m in log for s in (ROOT_PASSWORD, "standin-secret"))

    # The database is busy once: the job is retried with backoff, then completes.
    bench.control(backup={"lines": ["Lock wait timeout exceeded"], "exit": 1, "times": 1})
    backup = wait_job(start_job(admin_api, tenant, "backup_site"))

    assert backup.status == "completed", backup.error
    assert backup.attempts == 2
    assert "retry_scheduled" in [e.kind for e in events(backup)]
    assert [f["size"] for f in backup.result["files"]] == [94, 4321]
    assert backup.result["total_size"] == 4415


def test_cancelling_a_running_job_stops_bench_and_changes_nothing(admin_api, bench):
    tenant = new_tenant()
    bench.control(**{"new-site": {"lines": ["Installing frappe..."], "sleep": 60, "child": True}})
    job_id = start_job(admin_api, tenant, "create_site")
    wait_job(job_id, until=lambda _: bench.child_pid() is not None)

    answer = admin_api.post(f"{JOBS}/{job_id}/cancel")

    assert answer.status_code == 200
    assert answer.json["status"] == "cancelled"
    command = bench.calls()[0]["pid"]
    wait_job(job_id, until=lambda _: not alive(command) and not alive(bench.child_pid()))
    job = wait_job(job_id)
    assert job.status == "cancelled"
    assert len(bench.calls()) == 1  # no keys were generated
    assert not (bench.directory / "sites" / f"{tenant.slug}.localhost").exists()
    db.session.refresh(tenant)
    assert (tenant.status, tenant.has_own_site) == (TenantStatus.PENDING, False)

    # The worker goes on serving: a new job for the workspace completes.
    bench.control()
    again = wait_job(start_job(admin_api, tenant, "create_site"))
    assert again.status == "completed", again.error
