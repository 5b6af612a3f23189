"""The `bench` backend: site commands run with Frappe's CLI on the engine host.

The commands (erpnext-contract.md, "Site lifecycle"), each run from BENCH_DIR:
- `bench new-site S --admin-password P [--db-root-username U] --db-root-password R
  --install-app erpnext [BENCH_NEW_SITE_FLAGS]` (P is random and not kept: the provisioner
  signs in with API keys; an operator can set it with `bench --site S set-admin-password`).
  U is BENCH_DB_ROOT_USERNAME, for benches whose MariaDB root has socket auth only; the
  extra flags are e.g. `--mariadb-user-host-login-scope=%` where MariaDB skips name
  resolution. It runs only for a site that is not there yet, after the intent is recorded
  in the site registry; a site that is there already is kept only when the registry says
  an earlier attempt of this workspace made it (else SiteTaken: nothing is run on it).
- `bench --site S execute frappe.core.doctype.user.user.generate_keys --args "['Administrator']"`
  prints {"api_secret": …}. The key is then read from the User document with
  `bench --site S execute frappe.client.get_value --args "['User', 'api_key', 'Administrator']"`
  (get_value takes doctype, fieldname, filters; it prints {"api_key": …}). Both run quiet:
  their output holds credentials and never reaches the job's log or errors.
- `bench --site S backup`: the file paths come from its summary lines
  ("Database: ./S/private/backups/…-database.sql.gz  1.2MiB", relative to sites/), the
  sizes from os.stat.
- `bench drop-site S [--db-root-username U] --db-root-password R`: bench backs the site up
  first and moves it to archived/sites/.

Passwords can only be given to bench on its command line; they never reach task
arguments, logs or the job's record: command lines are logged with them masked.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.sites import process
from provisioner.sites.base import (
    BackupFile,
    JobContext,
    PermanentSiteError,
    SiteBackend,
    SiteBackup,
    SiteCreated,
    SiteDeleted,
    SiteTaken,
    TransientSiteError,
)

GENERATE_KEYS = "frappe.core.doctype.user.user.generate_keys"
GET_VALUE = "frappe.client.get_value"
SECRET_FLAGS = frozenset({"--admin-password", "--db-root-password"})
ERROR_LINES = 15  # how much of a failed command's output its error keeps
# Failures of the database server rather than of the command: the same command works later.
TRANSIENT_OUTPUT = re.compile(
    r"Lock wait timeout exceeded|Deadlock found|Can't connect to (local )?(MySQL|MariaDB)"
    r"|Lost connection to (MySQL|MariaDB)|Too many connections"
)
BACKUP_LINE = re.compile(r"^\s*(Config|Database|Public|Private)\s*:\s*(\S+)")


@dataclass(frozen=True)
class BenchSettings:
    path: str
    directory: str
    timeout: float
    site_url: str
    db_root_password: str = field(repr=False)
    db_root_username: str = ""  # empty: bench's default (root)
    new_site_flags: tuple[str, ...] = ()


class BenchBackend(SiteBackend):
    name = "bench"
    # The most bench commands an attempt runs: create_site runs new-site (or list-apps, for
    # a site an earlier attempt made), then two `execute`s for the API keys.
    COMMANDS = {"create_site": 3, "delete_site": 1, "backup_site": 1}

    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings

    def time_budget(self, job_type: str) -> float:
        return self.COMMANDS[job_type] * (self.settings.timeout + process.GRACE)

    def create_site(self, site: str, ctx: JobContext) -> SiteCreated:
        reused = self._exists(site)
        if reused:
            if not ctx.made_by_earlier_attempt():
                raise SiteTaken(site)
            ctx.step(5, f"site {site} exists already (an earlier attempt made it); checking it")
            self._require_erpnext(site, ctx)
        else:
            ctx.step(5, f"creating site {site} with ERPNext (bench new-site, about 90 s)")
            password = secrets.token_urlsafe(18)
            argv = ["new-site", site, "--admin-password", password, *self._db_root(),
                    "--install-app", "erpnext", *self.settings.new_site_flags]  # fmt: skip
            ctx.record_creation_start()
            try:
                self._bench(argv, ctx)
            except PermanentSiteError as exc:
                # Made by someone else between the check and new-site: still not ours.
                output = exc.details.get("output", ())
                if any(f"Site {site} already exists" in line for line in output):
                    raise SiteTaken(site) from None
                raise
        ctx.step(80, "generating API keys for Administrator")
        secret = self._execute(site, GENERATE_KEYS, ["Administrator"], "api_secret", ctx)
        ctx.step(90, "reading the API key of Administrator")
        key = self._execute(site, GET_VALUE, ["User", "api_key", "Administrator"], "api_key", ctx)
        return SiteCreated(site, self.settings.site_url, key, secret, reused=reused)

    def delete_site(self, site: str, ctx: JobContext) -> SiteDeleted:
        if not self._exists(site):
            ctx.output(f"site {site} is not on this bench (dropped already); nothing to do")
            return SiteDeleted(site, already_gone=True)
        ctx.step(10, f"dropping site {site} (bench backs it up first)")
        self._bench(["drop-site", site, *self._db_root()], ctx)
        return SiteDeleted(site)

    def backup_site(self, site: str, ctx: JobContext) -> SiteBackup:
        ctx.step(10, f"backing up site {site}")
        finished = self._bench(["--site", site, "backup"], ctx)
        sites_dir = Path(self.settings.directory, "sites")
        files = tuple(
            _backup_file(os.path.normpath(sites_dir / match.group(2)))
            for match in map(BACKUP_LINE.match, finished.lines)
            if match
        )
        if not files:
            raise PermanentSiteError(
                "bench backup named no backup file", output=_tail(finished.lines)
            )
        sizes = [f.size for f in files]
        total = None if None in sizes else sum(s or 0 for s in sizes)
        return SiteBackup(site, files, total)

    # -- helpers ---------------------------------------------------------------------------

    def _exists(self, site: str) -> bool:
        return Path(self.settings.directory, "sites", site, "site_config.json").is_file()

    def _db_root(self) -> list[str]:
        """The MariaDB superuser flags of new-site and drop-site."""
        if not self.settings.db_root_password:
            raise PermanentSiteError("BENCH_DB_ROOT_PASSWORD is not set on this worker")
        user = self.settings.db_root_username
        return [*(["--db-root-username", user] if user else []),
                "--db-root-password", self.settings.db_root_password]  # fmt: skip

    def _require_erpnext(self, site: str, ctx: JobContext) -> None:
        """A site left half-made by an interrupted new-site must not be handed out."""
        finished = self._bench(["--site", site, "list-apps"], ctx)
        if not any(line.split()[:1] == ["erpnext"] for line in finished.lines):
            raise PermanentSiteError(
                f"site {site} exists but ERPNext is not installed on it (a half-made site?); "
                f"drop it with `bench drop-site {site}`, then retry"
            )

    def _execute(
        self, site: str, method: str, args: list[str], wanted: str, ctx: JobContext
    ) -> str:
        argv = ["--site", site, "execute", method, "--args", repr(args)]
        finished = self._bench(argv, ctx, quiet=True)
        for line in reversed(finished.lines):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get(wanted):
                return str(value[wanted])
        raise PermanentSiteError(f"`{shown([self.settings.path, *argv])}` printed no {wanted}")

    def _bench(
        self, args: Sequence[str], ctx: JobContext, *, quiet: bool = False
    ) -> process.Finished:
        argv = [self.settings.path, *args]
        command = shown(argv)
        ctx.output(f"$ {command}")
        try:
            finished = process.run(
                argv, cwd=self.settings.directory, timeout=self.settings.timeout, ctx=ctx,
                quiet=quiet,
            )  # fmt: skip
        except OSError as exc:
            raise PermanentSiteError(
                f"cannot run {self.settings.path} in {self.settings.directory}: {exc.strerror}"
            ) from None
        except process.TimedOut as exc:
            raise TransientSiteError(
                f"`{command}` did not finish within {self.settings.timeout:g} s; it was stopped",
                output=_tail(exc.lines, quiet),
            ) from None
        if finished.returncode != 0:
            transient = not quiet and any(map(TRANSIENT_OUTPUT.search, finished.lines))
            error = TransientSiteError if transient else PermanentSiteError
            raise error(
                f"`{command}` exited with {finished.returncode}",
                exit_code=finished.returncode,
                output=_tail(finished.lines, quiet),
            )
        return finished


def shown(argv: Sequence[str]) -> str:
    """The command line as it may be logged: the values of password flags masked."""
    masked = [
        "***" if i > 0 and argv[i - 1] in SECRET_FLAGS else part for i, part in enumerate(argv)
    ]
    return " ".join(masked)


def _tail(lines: Sequence[str], quiet: bool = False) -> list[str]:
    if quiet:
        return ["(output withheld: this command prints credentials)"]
    return list(lines[-ERROR_LINES:])


def _backup_file(path: str) -> BackupFile:
    try:
        size: int | None = os.stat(path).st_size
    except OSError:
        size = None  # not visible from this worker
    return BackupFile(path, size)


def settings_from(config: Any) -> BenchSettings:
    return BenchSettings(
        path=config["BENCH_PATH"],
        directory=config["BENCH_DIR"],
        timeout=config["BENCH_TIMEOUT"],
        site_url=config["BENCH_SITE_URL"] or config["ERPNEXT_URL"],
        db_root_password=config["BENCH_DB_ROOT_PASSWORD"],
        db_root_username=config["BENCH_DB_ROOT_USERNAME"],
        new_site_flags=tuple(shlex.split(config["BENCH_NEW_SITE_FLAGS"])),
    )
