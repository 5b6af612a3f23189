"""The bench backend against a stand-in `bench`: command lines, output, exit codes, timeouts,
cancellation, and no credential in any log line."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from provisioner.sites import (
    JobCancelled,
    PermanentSiteError,
    SiteTaken,
    TransientSiteError,
    process,
)
from provisioner.sites.bench import BenchBackend, BenchSettings, settings_from, shown
from tests.bench_standin import StandInBench, alive, install

SITE = "acme.localhost"
ROOT_PASSWORD = "db-root-pw-123"


class Recorder:
    """A job context that keeps what the backend reports; `cancelled` makes the job unwanted;
    `made_before` is what the site registry says of an earlier attempt."""

    def __init__(self, *, made_before: bool = False, bench: StandInBench | None = None) -> None:
        self.lines: list[str] = []
        self.steps: list[tuple[int, str]] = []
        self.cancelled = False
        self.made_before = made_before
        self.bench = bench
        self.calls_when_recorded: int | None = None  # bench calls made before the intent

    def step(self, progress: int, message: str) -> None:
        if self.cancelled:
            raise JobCancelled(message)
        self.steps.append((progress, message))

    def output(self, line: str) -> None:
        self.lines.append(line)

    def wanted(self) -> bool:
        return not self.cancelled

    def made_by_earlier_attempt(self) -> bool:
        return self.made_before

    def record_creation_start(self) -> None:
        if self.cancelled:
            raise JobCancelled("cancelled")
        self.calls_when_recorded = len(self.bench.calls()) if self.bench else 0

    def log(self) -> str:
        return "\n".join(self.lines + [m for _, m in self.steps])


@pytest.fixture
def bench(tmp_path) -> StandInBench:
    return install(tmp_path)


def backend(bench: StandInBench, *, timeout: float = 30, password: str = ROOT_PASSWORD, **kw):
    settings = BenchSettings(
        path=str(bench.path),
        directory=str(bench.directory),
        timeout=timeout,
        site_url="http://engine.example:8000",
        db_root_password=password,
        **kw,
    )
    return BenchBackend(settings)


def wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_create_site_makes_the_site_then_generates_and_reads_keys(bench):
    ctx = Recorder(bench=bench)
    created = backend(bench).create_site(SITE, ctx)

    assert ctx.calls_when_recorded == 0  # the intent was recorded before new-site ran

    new_site, keys, key = bench.argvs()
    admin_password = new_site[3]
    assert new_site == [
        "new-site", SITE, "--admin-password", admin_password,
        "--db-root-password", ROOT_PASSWORD, "--install-app", "erpnext",
    ]  # fmt: skip
    assert len(admin_password) >= 20
    assert keys == [
        "--site", SITE, "execute", "frappe.core.doctype.user.user.generate_keys",
        "--args", "['Administrator']",
    ]  # fmt: skip
    assert key == [
        "--site", SITE, "execute", "frappe.client.get_value",
        "--args", "['User', 'api_key', 'Administrator']",
    ]  # fmt: skip
    assert {call["cwd"] for call in bench.calls()} == {str(bench.directory)}
    assert (created.site, created.url) == (SITE, "http://engine.example:8000")
    assert (created.api_key, created.api_secret, created.reused) == (
        "standin-key",
        "standin-secret",
        False,
    )
    assert "standin-secret" not in repr(created)
    # Output lines streamed as a terminal shows them: no colours, a redrawn bar's last state.
    assert "Installing erpnext..." in ctx.lines
    assert "Updating DocTypes for frappe        : [==========] 100%" in ctx.lines
    assert not any("50%" in line for line in ctx.lines)
    # Command lines are logged with passwords masked; keys and passwords appear nowhere.
    assert (
        f"$ {bench.path} new-site {SITE} --admin-password *** --db-root-password *** "
        "--install-app erpnext"
    ) in ctx.lines
    for secret in (admin_password, ROOT_PASSWORD, "standin-secret", "standin-key"):
        assert secret not in ctx.log()
    assert [p for p, _ in ctx.steps] == [5, 80, 90]


def test_create_site_keeps_a_site_an_earlier_attempt_made(bench):
    bench.make_site(SITE)
    created = backend(bench).create_site(SITE, Recorder(made_before=True))

    assert [argv[2] for argv in bench.argvs()] == ["list-apps", "execute", "execute"]
    assert created.reused
    assert created.api_secret == "standin-secret"


def test_an_existing_site_no_attempt_of_ours_made_is_left_alone(bench):
    """The site takeover: a workspace whose site name is the shared site's (or another's)."""
    bench.make_site(SITE)
    with pytest.raises(SiteTaken, match="not taken over"):
        backend(bench).create_site(SITE, Recorder())
    assert bench.calls() == []  # no generate_keys, no list-apps, nothing


def test_a_site_made_by_someone_else_during_new_site_is_not_ours_either(bench):
    bench.control(**{"new-site": {"lines": [f"Site {SITE} already exists"], "exit": 1}})
    with pytest.raises(SiteTaken):
        backend(bench).create_site(SITE, Recorder())
    assert [argv[0] for argv in bench.argvs()] == ["new-site"]


def test_db_root_username_and_extra_new_site_flags(bench):
    settings = {
        "db_root_username": "provisioner_dba",
        "new_site_flags": ("--mariadb-user-host-login-scope=%", "--no-mariadb-socket"),
    }
    backend(bench, **settings).create_site(SITE, Recorder())
    backend(bench, **settings).delete_site(SITE, Recorder())

    new_site, *_, drop = bench.argvs()
    assert new_site[4:] == [
        "--db-root-username", "provisioner_dba", "--db-root-password", ROOT_PASSWORD,
        "--install-app", "erpnext",
        "--mariadb-user-host-login-scope=%", "--no-mariadb-socket",
    ]  # fmt: skip
    assert drop == [
        "drop-site", SITE,
        "--db-root-username", "provisioner_dba", "--db-root-password", ROOT_PASSWORD,
    ]  # fmt: skip


def test_bench_settings_come_from_the_config():
    config = {
        "BENCH_PATH": "bench", "BENCH_DIR": "/b", "BENCH_TIMEOUT": 5.0, "BENCH_SITE_URL": None,
        "ERPNEXT_URL": "http://e:8000", "BENCH_DB_ROOT_PASSWORD": "pw",
        "BENCH_DB_ROOT_USERNAME": "dba",
        "BENCH_NEW_SITE_FLAGS": "--mariadb-user-host-login-scope=% --set-default",
    }  # fmt: skip
    settings = settings_from(config)
    assert (settings.db_root_username, settings.site_url) == ("dba", "http://e:8000")
    assert settings.new_site_flags == ("--mariadb-user-host-login-scope=%", "--set-default")


def test_create_site_refuses_a_half_made_site(bench):
    bench.make_site(SITE)
    bench.control(**{"list-apps": {"apps": []}})
    with pytest.raises(PermanentSiteError, match="ERPNext is not installed"):
        backend(bench).create_site(SITE, Recorder(made_before=True))
    assert len(bench.calls()) == 1


def test_backup_records_the_files_and_their_sizes(bench):
    bench.make_site(SITE)
    ctx = Recorder()
    backup = backend(bench).backup_site(SITE, ctx)

    assert bench.argvs() == [["--site", SITE, "backup"]]
    folder = bench.directory / "sites" / SITE / "private" / "backups"
    assert backup.public() == {
        "site": SITE,
        "files": [
            {"path": str(folder / "20261123_101500-acme_localhost-site_config_backup.json"),
             "size": 94},
            {"path": str(folder / "20261123_101500-acme_localhost-database.sql.gz"),
             "size": 4321},
        ],
        "total_size": 4415,
    }  # fmt: skip
    assert any(line.startswith("Backup for Site") for line in ctx.lines)


def test_drop_site_and_a_site_dropped_already(bench):
    bench.make_site(SITE)
    dropped = backend(bench).delete_site(SITE, Recorder())

    assert bench.argvs() == [["drop-site", SITE, "--db-root-password", ROOT_PASSWORD]]
    assert not dropped.already_gone
    assert (bench.directory / "archived" / "sites" / SITE).is_dir()
    again = backend(bench).delete_site(SITE, Recorder())
    assert again.already_gone
    assert len(bench.calls()) == 1


def test_a_non_zero_exit_fails_with_the_last_lines(bench):
    lines = [f"line {n}" for n in range(40)]
    bench.control(**{"new-site": {"lines": lines, "exit": 3}})
    with pytest.raises(PermanentSiteError) as failure:
        backend(bench).create_site(SITE, Recorder())

    summary = failure.value.summary()
    assert summary["class"] == "PermanentSiteError"
    assert summary["exit_code"] == 3
    assert summary["output"] == lines[-15:]
    assert "--db-root-password ***" in summary["message"]
    assert ROOT_PASSWORD not in str(summary)


def test_a_missing_site_fails_permanently(bench):
    with pytest.raises(PermanentSiteError) as failure:
        backend(bench).backup_site("ghost.localhost", Recorder())
    assert "IncorrectSitePath" in failure.value.details["output"][-1]


def test_database_trouble_is_transient(bench):
    bench.make_site(SITE)
    busy = "pymysql.err.OperationalError: (1205, 'Lock wait timeout exceeded')"
    bench.control(backup={"lines": [busy], "exit": 1})
    with pytest.raises(TransientSiteError):
        backend(bench).backup_site(SITE, Recorder())


def test_output_of_a_credential_command_is_never_shown(bench):
    bench.make_site(SITE)
    bench.control(generate_keys={"lines": ["api_secret=half-printed"], "exit": 1})
    ctx = Recorder(made_before=True)
    with pytest.raises(PermanentSiteError) as failure:
        backend(bench).create_site(SITE, ctx)
    assert "half-printed" not in str(failure.value.summary())
    assert "half-printed" not in ctx.log()


def test_a_command_past_its_time_limit_is_stopped_with_what_it_started(bench):
    bench.control(**{"new-site": {"lines": ["Installing frappe..."], "sleep": 60, "child": True}})
    with pytest.raises(TransientSiteError, match="did not finish within 1 s") as failure:
        backend(bench, timeout=1).create_site(SITE, Recorder())

    assert failure.value.details["output"] == ["Installing frappe..."]
    assert not alive(bench.calls()[0]["pid"])
    wait_for(lambda: not alive(bench.child_pid()))
    assert not (bench.directory / "sites" / SITE).exists()


def test_a_cancelled_job_stops_its_command(bench, monkeypatch):
    monkeypatch.setattr(process, "CHECK_EVERY", 0.1)
    bench.control(**{"new-site": {"sleep": 60, "child": True}})
    ctx = Recorder()
    ctx.wanted = lambda: not bench.calls()  # unwanted once the command has started

    with pytest.raises(JobCancelled):
        backend(bench).create_site(SITE, ctx)

    wait_for(lambda: not alive(bench.child_pid()))
    assert not alive(bench.calls()[0]["pid"])
    assert len(bench.calls()) == 1  # no keys were generated


def test_no_command_runs_once_the_job_is_cancelled(bench):
    ctx = Recorder()
    ctx.cancelled = True
    with pytest.raises(JobCancelled):
        backend(bench).create_site(SITE, ctx)
    assert bench.calls() == []


def _run_until_terminated(bench_path: str, bench_dir: str) -> None:
    process.run([bench_path, "new-site", SITE], cwd=bench_dir, timeout=60, ctx=Recorder())


def test_a_terminated_worker_process_takes_its_command_along(bench):
    """What `revoke(terminate=True)` does to the prefork process running a bench job."""
    bench.control(**{"new-site": {"sleep": 60, "child": True}})
    worker = multiprocessing.get_context("fork").Process(
        target=_run_until_terminated, args=(str(bench.path), str(bench.directory))
    )
    worker.start()
    wait_for(bench.child_pid)
    os.kill(worker.pid, signal.SIGTERM)
    worker.join(timeout=15)

    assert worker.exitcode == -signal.SIGTERM
    assert not alive(bench.calls()[0]["pid"])
    wait_for(lambda: not alive(bench.child_pid()))


def test_configuration_mistakes_are_permanent(bench, tmp_path: Path):
    with pytest.raises(PermanentSiteError, match="BENCH_DB_ROOT_PASSWORD is not set"):
        backend(bench, password="").create_site(SITE, Recorder())
    missing = BenchBackend(
        BenchSettings(str(tmp_path / "no-bench"), str(bench.directory), 5, "http://x", "pw")
    )
    with pytest.raises(PermanentSiteError, match="cannot run"):
        missing.backup_site(SITE, Recorder())
    assert bench.calls() == []


def test_shown_masks_password_values():
    argv = ["bench", "drop-site", "s", "--db-root-password", "pw", "--admin-password", "a"]
    assert shown(argv) == "bench drop-site s --db-root-password *** --admin-password ***"
