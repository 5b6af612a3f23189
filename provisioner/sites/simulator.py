"""The `simulator` backend: the ERPNext simulator's admin API at ERPNEXT_URL stands in for bench.

`GET /__simulator__/sites` lists the sites (a site there already is kept only when the
registry says this workspace's earlier attempt made it); `POST /__simulator__/sites` makes
a fresh site (served by Host header) and answers its API keys; `POST …/sites/<site>/keys`
makes new ones; `POST …/sites/<site>/backup` lists the files a backup would write;
`DELETE …/sites/<site>` archives the site.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

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

ADMIN = "/__simulator__"
# A new site takes ~85 s when the simulator plays real latency.
READ_TIMEOUT = 300.0


class SimulatorBackend(SiteBackend):
    name = "simulator"
    CALLS = {"create_site": 2, "delete_site": 1, "backup_site": 1}  # admin API calls per attempt

    def __init__(self, url: str, connect_timeout: float) -> None:
        self.url = url.rstrip("/")
        self.connect_timeout = connect_timeout

    def time_budget(self, job_type: str) -> float:
        return self.CALLS[job_type] * (self.connect_timeout + READ_TIMEOUT)

    def create_site(self, site: str, ctx: JobContext) -> SiteCreated:
        ctx.step(10, f"creating site {site} on the simulator")
        reused = site in _data(self._call("GET", "/sites"), site)["sites"]
        if reused:
            if not ctx.made_by_earlier_attempt():
                raise SiteTaken(site)
            ctx.step(60, f"site {site} exists already (an earlier attempt made it); new API keys")
            answer = self._call("POST", f"/sites/{quote(site)}/keys")
        else:
            ctx.record_creation_start()
            answer = self._call("POST", "/sites", json={"site": site, "fresh": True})
            if answer.status_code == 409:  # made by someone else since the check
                raise SiteTaken(site)
        data = _data(answer, site)
        ctx.output(f"site {site} is served at {self.url} (Host: {site})")
        return SiteCreated(site, self.url, data["api_key"], data["api_secret"], reused=reused)

    def delete_site(self, site: str, ctx: JobContext) -> SiteDeleted:
        ctx.step(10, f"dropping site {site} on the simulator")
        answer = self._call("DELETE", f"/sites/{quote(site)}")
        if _site_missing(answer):
            ctx.output(f"site {site} does not exist (dropped already); nothing to do")
            return SiteDeleted(site, already_gone=True)
        _data(answer, site)
        return SiteDeleted(site)

    def backup_site(self, site: str, ctx: JobContext) -> SiteBackup:
        ctx.step(10, f"backing up site {site} on the simulator")
        data = _data(self._call("POST", f"/sites/{quote(site)}/backup"), site)
        files = tuple(BackupFile(name, None) for name in data["files"])
        for name in data["files"]:
            ctx.output(f"wrote {name}")
        return SiteBackup(site, files, data.get("size"))

    def _call(self, method: str, path: str, **kw: Any) -> requests.Response:
        try:
            answer = requests.request(
                method, self.url + ADMIN + path, timeout=(self.connect_timeout, READ_TIMEOUT), **kw
            )
        except requests.RequestException as exc:
            raise TransientSiteError(
                f"the simulator did not answer: {type(exc).__name__}"
            ) from None
        if answer.status_code in (502, 503, 504):
            raise TransientSiteError(f"the simulator is busy ({answer.status_code})")
        return answer


def _site_missing(answer: requests.Response) -> bool:
    """The simulator's own "no such site" (a 404 page of something else is not that)."""
    return answer.status_code == 404 and _json(answer).get("error") == "not_found"


def _data(answer: requests.Response, site: str) -> dict[str, Any]:
    if _site_missing(answer):
        raise PermanentSiteError(f"site {site} does not exist", status=404)
    body = _json(answer)
    if answer.status_code >= 400 or not body:
        reason = body.get("message") or f"{answer.status_code} {answer.reason}"
        raise PermanentSiteError(
            f"the simulator's admin API refused: {reason}", status=answer.status_code
        )
    return body


def _json(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
