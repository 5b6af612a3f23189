"""The two dialects of the API, and the one table between their step vocabularies.

Provisioner's own routes (`/api/v1/…`) speak its step names (`create_company`) and shapes,
and accept the page's step identifiers too. The routes the platform's workspace page
already calls (`/api/provisioning/…`, `/iam/tenants`, `/api/iam/tenants`) speak the page's
dialect: its step identifiers (`step_2_company`) wherever a step is named, a queued run
shown as `IN_PROGRESS` (the page knows no `PENDING`), `progress` as a float, and logs as
`{"logs": [{"step", "status", "message", "completed_at", "duration_ms"}]}`.

Everything here is a pure function of plain data (the status document is the dict that
`schemas.run.status_document` builds and `provisioning_runs.status_doc` keeps), so the API
and the live-stream process translate alike, once per document.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from provisioner.models.status import UNFINISHED_STEP_STATUSES


class Dialect(StrEnum):
    PROVISIONER = "provisioner"  # /api/v1/…
    PAGE = "page"  # /api/provisioning/…, /iam/tenants, /api/iam/tenants


# Provisioner's step name -> the page's step identifier (the gaps are the page's own).
PAGE_STEP_IDS: dict[str, str] = {
    "check_engine": "step_0_engine_check",
    "create_company": "step_2_company",
    "import_chart_of_accounts": "step_3_chart_of_accounts",
    "create_warehouses": "step_4_warehouses",
    "configure_settings": "step_5_settings",
    "create_demo_items": "step_6_items",
    "create_walk_in_customer": "step_7_customer",
    "create_pos_profile": "step_8_pos_profile",
    "open_pos_session": "step_9_pos_session",
}
STEP_NAMES_BY_PAGE_ID: dict[str, str] = {page: name for name, page in PAGE_STEP_IDS.items()}
# A run the page would call running: written and queued, its first step not started yet.
PAGE_RUN_STATUSES: dict[str, str] = {"PENDING": "IN_PROGRESS"}


def step_name(identifier: str) -> str:
    """Provisioner's name of a step named in either vocabulary (anything else unchanged)."""
    return STEP_NAMES_BY_PAGE_ID.get(identifier, identifier)


def page_step_id(name: str | None) -> str | None:
    """The page's identifier of a step Provisioner names `name` (anything else unchanged)."""
    return PAGE_STEP_IDS.get(name, name) if name is not None else None


def status_document(doc: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """A run's status document (Provisioner's) as `dialect` answers it."""
    return page_status(doc) if dialect == Dialect.PAGE else doc


def run_summary(doc: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """A run's summary (a run list's item) as `dialect` answers it."""
    return page_summary(doc) if dialect == Dialect.PAGE else doc


def page_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """The run-level fields in the page's terms: status, current step, float progress."""
    return {
        **doc,
        "status": PAGE_RUN_STATUSES.get(doc["status"], doc["status"]),
        "current_step": page_step_id(doc.get("current_step")),
        "progress": float(doc["progress"]),
    }


def page_status(doc: dict[str, Any]) -> dict[str, Any]:
    """The status document in the page's terms: every step named by its page identifier,
    and a queued run's current step is the one it will start with."""
    current = doc.get("current_step")
    if current is None and doc["status"] == "PENDING":
        current = next(
            (s["name"] for s in doc["steps"] if s["status"] in UNFINISHED_STEP_STATUSES), None
        )
    page = {
        **page_summary({**doc, "current_step": current}),
        "steps": [{**step, "name": page_step_id(step["name"])} for step in doc["steps"]],
        "errors": [{**error, "step": page_step_id(error["step"])} for error in doc["errors"]],
    }
    if waiting := doc.get("waiting_for_engine"):
        page["waiting_for_engine"] = {**waiting, "step": page_step_id(waiting["step"])}
    return page


def page_document(data: dict[str, Any]) -> dict[str, Any]:
    """What a stream sends about a workspace, in the page's terms: a status document
    translated, the idle document of a workspace without a run as it is (the live process's
    translation of its `status` and `idle` frames)."""
    return page_status(data) if "steps" in data else data


def page_log_entry(event: dict[str, Any]) -> dict[str, Any]:
    """One step event (`schemas.run.RunEventSchema`'s dump) as an entry of the page's log."""
    return {
        "id": event["id"],
        "step": page_step_id(event["step"]),
        "kind": event["kind"],
        "status": event["status"],
        "attempt": event["attempt"],
        "message": event["message"],
        "completed_at": event["created_at"],
        "duration_ms": event["duration_ms"],
    }
