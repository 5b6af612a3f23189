"""The simulated ERPNext server: its sites, injected faults, latency and call log."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

from provisioner.simulator import fixtures
from provisioner.simulator.controllers import initials
from provisioner.simulator.documents import Documents
from provisioner.simulator.errors import ValidationError
from provisioner.simulator.faults import FaultBook
from provisioner.simulator.latency import BACKUP, DROP_SITE, NEW_SITE, Latency
from provisioner.simulator.store import SiteData

DEFAULT_SITE = "erp.localhost"
DEFAULT_COMPANY = "Engine Default Ltd"
CALL_LOG_SIZE = 20_000


class Simulator:
    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        site: str = DEFAULT_SITE,
        fresh_site: bool = False,
        latency: str | float = "zero",
        state_file: str | Path | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.default_site = site
        self.latency = Latency(latency)
        self.faults = FaultBook(seed)
        self.state_file = Path(state_file) if state_file else None
        self._lock = threading.RLock()
        self._save_lock = threading.Lock()  # one writer of the state file at a time
        self._calls: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self._seq = 0
        self.generation = 0  # bumped by reset(): calls begun before it are not logged after it
        self.sites: dict[str, SiteData] = {}
        self.archived: list[str] = []
        if self.state_file and self.state_file.exists():
            self._load(self.state_file)
        else:
            self.reset(fresh_site=fresh_site)

    # -- sites -----------------------------------------------------------------------------

    def reset(self, *, fresh_site: bool = False) -> None:
        """Back to one site: fresh, or set up with the default company."""
        site = SiteData(self.default_site, self.api_key, self.api_secret)
        fixtures.bootstrap(site)
        if not fresh_site:
            args = fixtures.default_wizard_args(DEFAULT_COMPANY, initials(DEFAULT_COMPANY))
            self.run_wizard(site, args, timed=False)
        with self._lock:
            self.sites = {site.name: site}
            self.archived = []
            self._calls.clear()
            self.generation += 1
        self.save()

    def site_for(self, host: str) -> SiteData | None:
        """The site a request is for: by name; an IP address or localhost means the default."""
        host = host.split(":", maxsplit=1)[0].lower()
        with self._lock:
            if host in self.sites:
                return self.sites[host]
            if host in ("localhost", "") or host.replace(".", "").isdigit():
                return self.sites.get(self.default_site)
        return None

    def documents(self, site: SiteData, *, timed: bool = True) -> Documents:
        """Document operations on a site; untimed ones (building a starting state) never
        sleep."""
        if not timed:
            return Documents(site, lambda _seconds: None, lambda _doctype: 0.0)
        return Documents(site, self.pause, self.latency.build)

    def run_wizard(self, site: SiteData, raw_args: Any, *, timed: bool = True) -> None:
        """The setup wizard: fixtures, then the first company; a failure rolls it all back,
        as the wizard's request does on real ERPNext."""
        args = fixtures.wizard_args(raw_args)
        with site.lock:
            if int(site.single("System Settings").get("setup_complete") or 0):
                raise ValidationError("Setup Already Complete", title="Setup failed")
            if site.wizard_running:
                raise ValidationError("Setup is already running", title="Setup failed")
            site.wizard_running = True
            before = site.snapshot()
            fixtures.install(site, args)
        try:
            self.documents(site, timed=timed).insert(
                "Company",
                {
                    "company_name": args["company_name"],
                    "abbr": args["company_abbr"],
                    "default_currency": args["currency"],
                    "country": args["country"],
                    "chart_of_accounts": args["chart_of_accounts"],
                },
            )
            with site.lock:
                site.single("System Settings")["setup_complete"] = 1
                site.single("Global Defaults")["default_company"] = args["company_name"]
        except Exception:
            with site.lock:
                site.restore(before)
            raise
        finally:
            with site.lock:
                site.wizard_running = False

    def new_site(self, name: str, *, fresh: bool = True) -> dict[str, str]:
        """`bench new-site`: a site before its wizard, with API keys for Administrator."""
        with self._lock:
            if name in self.sites:
                raise ValueError(f"site {name} already exists")
        self.pause(self.latency.of(NEW_SITE))
        key, secret = secrets.token_hex(8), secrets.token_hex(8)
        site = SiteData(name, key, secret)
        fixtures.bootstrap(site)
        if not fresh:
            self.run_wizard(site, fixtures.default_wizard_args(DEFAULT_COMPANY, "EDL"), timed=False)
        with self._lock:
            self.sites[name] = site
        self.save()
        return {"site": name, "api_key": key, "api_secret": secret}

    def generate_keys(self, name: str) -> dict[str, str]:
        site = self._site(name)
        key, secret = secrets.token_hex(8), secrets.token_hex(8)
        with site.lock:
            site.keys = {key: secret}
        self.save()
        return {"site": name, "api_key": key, "api_secret": secret}

    def backup(self, name: str) -> dict[str, Any]:
        site = self._site(name)
        self.pause(self.latency.of(BACKUP))
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        base = f"{stamp}-{name.replace('.', '_')}"
        with site.lock:
            size = len(json.dumps(site.dump(), default=str))
        return {
            "site": name,
            "files": [f"{base}-database.sql.gz", f"{base}-site_config_backup.json"],
            "size": size,
        }

    def drop_site(self, name: str) -> dict[str, Any]:
        self._site(name)
        self.pause(self.latency.of(DROP_SITE))
        with self._lock:
            self.sites.pop(name, None)
            self.archived.append(name)
        self.save()
        return {"site": name, "archived": True}

    def _site(self, name: str) -> SiteData:
        with self._lock:
            site = self.sites.get(name)
        if site is None:
            raise LookupError(f"IncorrectSitePath: site {name} does not exist")
        return site

    # -- calls, time, state ----------------------------------------------------------------

    def record(self, call: dict[str, Any], generation: int | None = None) -> None:
        """Log a call; one begun before the last reset (a held timeout, say) is left out."""
        with self._lock:
            if generation is not None and generation != self.generation:
                return
            self._seq += 1
            self._calls.append({"seq": self._seq, **call})

    def calls(self, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self._calls if c["seq"] > since]

    def add_fault(self, **spec: Any) -> dict[str, Any]:
        return self.faults.add(**spec).as_dict()

    def clear_faults(self) -> None:
        self.faults.clear()

    @staticmethod
    def pause(seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def save(self) -> None:
        if self.state_file is None:
            return
        with self._save_lock:  # parallel writers would trip over one another's temp file
            with self._lock:
                sites = list(self.sites.values())
            data = []
            for site in sites:
                with site.lock:
                    data.append(json.loads(json.dumps(site.dump(), default=str)))
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"sites": data, "default_site": self.default_site}))
            tmp.replace(self.state_file)

    def _load(self, state_file: Path) -> None:
        data = json.loads(state_file.read_text())
        self.sites = {s["name"]: SiteData.load(s) for s in data["sites"]}
