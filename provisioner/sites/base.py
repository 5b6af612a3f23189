"""What every site backend offers, returns and raises, and what it is given to report with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioner.security import scrub


class SiteJobError(Exception):
    """A site command did not do what it was asked; `details` is safe to store and show
    (credential-shaped text in the message and details is cut out here)."""

    transient = False

    def __init__(self, message: str, **details: Any) -> None:
        message = scrub.text(message)
        super().__init__(message)
        self.message = message
        self.details = scrub.tree(details)

    def summary(self) -> dict[str, Any]:
        return {"class": type(self).__name__, "message": self.message, **self.details}


class TransientSiteError(SiteJobError):
    """Worth trying again as it is: the engine host was busy, slow or unreachable."""

    transient = True


class PermanentSiteError(SiteJobError):
    """Will fail the same way until someone changes something."""


class SiteTaken(PermanentSiteError):
    """The site exists on the engine, and no earlier attempt of this workspace made it."""

    def __init__(self, site: str) -> None:
        super().__init__(
            f"site {site} exists on the engine already, and no earlier attempt of this "
            "workspace made it (it may be the shared site or another workspace's): it is "
            "left alone, its API keys are not regenerated and it is not taken over"
        )


class JobCancelled(Exception):
    """The job was cancelled (or handed to another task) while it ran: stop, change nothing."""


class JobContext(Protocol):
    """How a backend reports to the job's record while it works."""

    def step(self, progress: int, message: str) -> None:
        """Say what comes next; raises JobCancelled if the job is no longer wanted.

        Backends call it before every command that changes the engine host."""

    def output(self, line: str) -> None:
        """One line of a command's output, for the job's log."""

    def wanted(self) -> bool:
        """Whether the job is still this task's to run (read from the database)."""

    def made_by_earlier_attempt(self) -> bool:
        """Whether the site registry says an earlier attempt of this workspace began making
        the site: only then may an existing site be kept (`create_site`)."""

    def record_creation_start(self) -> None:
        """Record in the site registry (committed) that this attempt starts making the site,
        before the engine host makes anything; raises JobCancelled if the job is gone."""


@dataclass(frozen=True)
class SiteCreated:
    site: str
    url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    reused: bool = False  # the site existed already (an earlier attempt made it); new keys

    def public(self) -> dict[str, Any]:
        return {"site": self.site, "url": self.url, "reused": self.reused}


@dataclass(frozen=True)
class BackupFile:
    path: str
    size: int | None  # bytes; None when the backend does not say


@dataclass(frozen=True)
class SiteBackup:
    site: str
    files: tuple[BackupFile, ...]
    total_size: int | None  # bytes

    def public(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "files": [{"path": f.path, "size": f.size} for f in self.files],
            "total_size": self.total_size,
        }


@dataclass(frozen=True)
class SiteDeleted:
    site: str
    already_gone: bool = False

    def public(self) -> dict[str, Any]:
        return {"site": self.site, "already_gone": self.already_gone}


SiteOutcome = SiteCreated | SiteBackup | SiteDeleted


class SiteBackend(ABC):
    """Creates, drops and backs up engine sites. Every method is safe to call again after
    an attempt whose outcome was lost (a retry or redelivery after a timeout)."""

    name: str

    @abstractmethod
    def time_budget(self, job_type: str) -> float:
        """The longest one attempt of a job of this type may take (s): its soft time limit.
        Declared from the backend's own limits (a command's or a call's timeout)."""

    @abstractmethod
    def create_site(self, site: str, ctx: JobContext) -> SiteCreated:
        """A new site with ERPNext installed and fresh API keys for Administrator. A site that
        exists already is kept only if `ctx.made_by_earlier_attempt()`; else SiteTaken."""

    @abstractmethod
    def delete_site(self, site: str, ctx: JobContext) -> SiteDeleted:
        """Drop the site (archived by the engine host); a site already gone is fine."""

    @abstractmethod
    def backup_site(self, site: str, ctx: JobContext) -> SiteBackup:
        """A backup of the site's database and config, with the files it wrote."""
