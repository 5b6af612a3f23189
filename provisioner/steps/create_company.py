from __future__ import annotations

import re
from datetime import date
from itertools import count
from typing import Any

from provisioner.engine import DuplicateEntry, EngineClient
from provisioner.engine.errors import ValidationFailed
from provisioner.engine.health import health_cache, setup_complete
from provisioner.steps.base import Check, Step, StepContext, StepError, StepResult
from provisioner.steps.checks import check_rows

CHARTS_FOR_COUNTRY = (
    "erpnext.accounts.doctype.account.chart_of_accounts.chart_of_accounts.get_charts_for_country"
)
SETUP_WIZARD = "frappe.desk.page.setup_wizard.setup_wizard.setup_complete"
STANDARD_CHART = "Standard"
ABBR_TAKEN = "Abbreviation already used"
# The wizard takes ~14 s on a real site; give it room beyond the usual read timeout.
WIZARD_TIMEOUT = 180.0


class CreateCompany(Step):
    """The tenant's Company exists, named after the workspace.

    On a site whose setup wizard has not run (a fresh site of its own), the wizard is run
    with this company. Company creation is serialized per site: ERPNext cannot make two
    companies on one site at the same time.
    """

    name = "create_company"
    title = "Create the company"
    lock_waits = 1  # company creation, one at a time per site
    long_calls = WIZARD_TIMEOUT  # a fresh site's setup wizard

    def run(self, ctx: StepContext) -> StepResult:
        company = ctx.tenant.name
        notes: list[str] = []
        with ctx.lock("company-creation"):
            doc = ctx.engine.get_doc("Company", company)
            created = doc is None
            if doc is None:
                chart = resolve_chart(ctx, notes)
                if setup_complete(ctx.engine):
                    doc = _insert_company(ctx, company, chart)
                else:
                    doc = _run_setup_wizard(ctx, company, chart)
                    notes.append("the site was fresh: its setup wizard ran with this company")
        facts = {
            "company": doc["name"],
            "abbr": doc["abbr"],
            "currency": doc.get("default_currency"),
            "chart_of_accounts": doc.get("chart_of_accounts"),
        }
        return StepResult(result={**facts, "created": created}, metadata=facts, notes=notes)

    def verify(self, ctx: StepContext) -> list[Check]:
        company = ctx.need("company", self.name)
        must = {"abbr": ctx.need("abbr", self.name)}  # every name the workspace made ends in it
        return check_rows(ctx.engine, self.name, "Company", [company], must)


def resolve_chart(ctx: StepContext, notes: list[str]) -> str:
    """The chart the platform asks for if the engine offers it for the country, else Standard."""
    wanted = ctx.tenant.wanted_chart if ctx.options.country_template else STANDARD_CHART
    offered = ctx.engine.call(CHARTS_FOR_COUNTRY, country=ctx.tenant.country) or []
    if wanted in offered:
        return wanted
    if STANDARD_CHART not in offered:
        raise StepError(f"the engine offers no usable chart of accounts for {ctx.tenant.country}")
    notes.append(
        f"ERPNext has no '{wanted}' chart of accounts for {ctx.tenant.country} "
        f"(it offers: {', '.join(offered)}); used '{STANDARD_CHART}'"
    )
    return STANDARD_CHART


def _insert_company(ctx: StepContext, company: str, chart: str) -> dict[str, Any]:
    for _ in range(3):  # someone outside Provisioner may take an abbreviation meanwhile
        doc = {
            "company_name": company,
            "abbr": free_abbreviation(ctx.engine, company),
            "default_currency": ctx.tenant.currency,
            "country": ctx.tenant.country,
            "chart_of_accounts": chart,
        }
        try:
            return ctx.engine.insert("Company", doc)
        except DuplicateEntry as exc:
            existing = ctx.engine.get_doc("Company", company)
            if existing is None:
                raise exc.still_in_flight(f"Company {company}") from exc
            return existing
        except ValidationFailed as exc:
            if ABBR_TAKEN not in exc.message:
                raise
    raise StepError(f"could not find a free abbreviation for {company}")


def _run_setup_wizard(ctx: StepContext, company: str, chart: str) -> dict[str, Any]:
    year = date.today().year
    args = {
        "language": "English",
        "country": ctx.tenant.country,
        "timezone": ctx.tenant.timezone,
        "currency": ctx.tenant.currency,
        "company_name": company,
        "company_abbr": abbreviation_base(company),
        "chart_of_accounts": chart,
        "fy_start_date": f"{year}-01-01",
        "fy_end_date": f"{year}-12-31",
        "setup_demo": 0,
        "enable_telemetry": 0,
    }
    ctx.engine.post(SETUP_WIZARD, {"args": args}, read_timeout=WIZARD_TIMEOUT)
    health_cache.forget(ctx.engine)
    doc = ctx.engine.get_doc("Company", company)
    if doc is None:
        raise StepError(f"the setup wizard finished but company {company} is not there")
    return doc


def abbreviation_base(company: str) -> str:
    """Initials of the name's words, as ERPNext makes them; at least two letters."""
    words = re.findall(r"[A-Za-z0-9]+", company)
    initials = "".join(w[0] for w in words).upper()
    if len(initials) >= 2:
        return initials[:6]
    return (words[0][:3] if words else "CO").upper()


def free_abbreviation(engine: EngineClient, company: str) -> str:
    """The first of ABC, ABC2, ABC3… that no company on the site uses, in one engine call
    (a shared site may hold hundreds of companies with the same initials)."""
    base = abbreviation_base(company)
    rows = engine.get_list(
        "Company", filters=[["abbr", "like", f"{base}%"]], fields=["abbr"], limit=0
    )
    taken = {row["abbr"].upper() for row in rows}  # MariaDB compares without case
    candidates = (base if n == 1 else f"{base}{n}" for n in count(1))
    return next(c for c in candidates if c not in taken)
