"""The database of record: every tenant, run, step and event lives here and only here."""

from provisioner.models.audit import AuditEntry
from provisioner.models.job import JobStatus, JobType, SiteJob, SiteJobEvent
from provisioner.models.run import Run, RunEvent, RunStep, latest_run
from provisioner.models.site import Site, SiteState
from provisioner.models.status import (
    ProvisioningStatus,
    Role,
    RunStatus,
    StepStatus,
    TenantStatus,
)
from provisioner.models.tenant import Tenant
from provisioner.models.user import Membership, User
from provisioner.models.verification import (
    Verification,
    VerificationStatus,
    latest_verification,
)
from provisioner.models.webhook import DeliveryStatus, Webhook, WebhookDelivery

__all__ = [
    "AuditEntry",
    "DeliveryStatus",
    "JobStatus",
    "JobType",
    "Membership",
    "ProvisioningStatus",
    "Role",
    "Run",
    "RunEvent",
    "RunStatus",
    "RunStep",
    "Site",
    "SiteJob",
    "SiteJobEvent",
    "SiteState",
    "StepStatus",
    "Tenant",
    "TenantStatus",
    "User",
    "Verification",
    "VerificationStatus",
    "Webhook",
    "WebhookDelivery",
    "latest_run",
    "latest_verification",
]
