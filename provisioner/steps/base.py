"""The one small interface every provisioning step implements, and what a step is given.

Steps know ERPNext and nothing else: no Flask, no Celery, no SQLAlchemy. A step gets a
`StepContext` (engine client, tenant, options, the run's metadata, a per-site lock) and
returns a `StepResult`. Errors it raises decide what happens next:
transient engine errors are retried by the task wrapper; anything else fails the step,
and the step's `critical` flag decides whether the run stops or goes on.

Beside `run`, every step has `verify`: a read-only look at what the step made, returning
one `Check` per document. A REPAIR run of the drifted steps runs them again: `run` restores
what drifted (see `ensure`) and writes nothing that had not.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from provisioner.engine import EngineClient, PermanentEngineError

DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class TenantProfile:
    """The workspace as the steps see it."""

    name: str  # also the ERPNext company name
    slug: str
    country_code: str
    country: str  # as ERPNext spells it
    currency: str
    timezone: str
    wanted_chart: str  # the chart the platform asks for; resolved against the engine
    shared_site: bool  # False when the tenant has a site of its own


@dataclass(frozen=True)
class RunOptions:
    include_demo_data: bool = False
    pos_store_enabled: bool = True
    country_template: bool = True
    # A REPAIR run: settings this workspace relies on are restored even on a shared site.
    repair: bool = False


@dataclass(frozen=True)
class PaymentMethod:
    mode: str
    default: bool = False


@dataclass(frozen=True)
class DemoItem:
    code: str
    name: str
    rate: float
    stock_item: bool = True


@dataclass(frozen=True)
class BusinessTemplate:
    """Values for one kind of business, kept as data (see provisioner/catalog/templates)."""

    name: str
    title: str
    selling_settings: Mapping[str, Any]
    stock_settings: Mapping[str, Any]
    payment_methods: tuple[PaymentMethod, ...]
    demo_items: tuple[DemoItem, ...]


LockFactory = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class Costs:
    """The longest one engine call and one wait for a per-site lock may take (s), as the
    settings make them (timeouts, throttle slot wait, lock timeout)."""

    call: float
    lock_wait: float


@dataclass
class StepContext:
    engine: EngineClient
    tenant: TenantProfile
    options: RunOptions
    template: BusinessTemplate
    metadata: Mapping[str, Any]
    # lock(name) serializes a block across every worker writing to the same engine site.
    lock: LockFactory
    # How long a successful engine health check may be reused (seconds).
    health_ttl: float = 45.0

    def need(self, key: str, producer: str) -> Any:
        """A value an earlier step stored, or a clear failure naming that step."""
        value = self.metadata.get(key)
        if value in (None, ""):
            raise MissingPrerequisite(f"{key} is not known yet: run {producer} first")
        return value


@dataclass
class StepResult:
    result: dict[str, Any] = field(default_factory=dict)  # references to what the step made
    metadata: dict[str, Any] = field(default_factory=dict)  # merged into the run's metadata
    notes: list[str] = field(default_factory=list)  # plain-word remarks for people


class CheckState(StrEnum):
    OK = "ok"
    MISSING = "missing"  # the document is not there
    CHANGED = "changed"  # it is there, but a field the point of sale needs differs
    UNKNOWN = "unknown"  # the engine could not be read; the message says why


@dataclass(frozen=True)
class Check:
    """What `verify` found about one document; every value is JSON-friendly.

    `expected` holds the fields the document must have, `actual` the same fields as read
    (None when the document is missing or could not be read).
    """

    step: str
    doctype: str
    name: str
    state: CheckState
    expected: Any = None
    actual: Any = None
    message: str = ""  # plain words for a person

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "state": str(self.state)}


class StepError(Exception):
    """The step cannot succeed as things are (validation, missing prerequisite…)."""


class MissingPrerequisite(StepError):
    pass


class NonCriticalFailure(StepError):
    """Part of a step failed that the run can do without; what did succeed is kept."""

    def __init__(self, message: str, partial: StepResult) -> None:
        super().__init__(message)
        self.partial = partial


@contextmanager
def non_critical(what: str, partial: StepResult) -> Iterator[None]:
    """Turn a permanent failure of an optional part into a NonCriticalFailure.

    Transient ones go up as they are: the whole step is retried (its idempotent parts are
    no-ops), and waits for its engine once its retries are used up, like any step.
    """
    try:
        yield
    except PermanentEngineError as exc:
        raise NonCriticalFailure(f"{what}: {exc.message}", partial) from exc


class Step(ABC):
    """One provisioning step: makes sure of one thing in ERPNext, idempotently."""

    name: ClassVar[str]
    title: ClassVar[str]  # for people: "Create the company"
    critical: ClassVar[bool] = True  # its failure fails the run
    optional: ClassVar[bool] = False  # a person may skip it
    requires: ClassVar[tuple[str, ...]] = ()  # steps whose results it reads
    max_retries: ClassVar[int] = DEFAULT_MAX_RETRIES
    # What one attempt may spend at most (`time_budget`, its soft time limit): the most engine
    # calls it makes, the most per-site locks it waits for, and the time its calls with a
    # longer timeout of their own may take beyond the usual one.
    engine_calls: ClassVar[int] = 10
    lock_waits: ClassVar[int] = 0
    long_calls: ClassVar[float] = 0.0

    def time_budget(self, costs: Costs) -> float:
        """The longest one attempt may take (s), every call and lock wait at its limit."""
        return self.engine_calls * costs.call + self.lock_waits * costs.lock_wait + self.long_calls

    def skip_reason(self, options: RunOptions) -> str | None:
        """Why this step will not run with these options, or None."""
        return None

    @abstractmethod
    def run(self, ctx: StepContext) -> StepResult:
        """Make sure of the step's documents; return references to them."""

    @abstractmethod
    def verify(self, ctx: StepContext) -> list[Check]:
        """Check, with engine reads only, that what the step made is still there and right.

        Meant for a step that completed: it reads what the step recorded in the run's
        metadata (MissingPrerequisite when that is absent). Engine errors never leave it:
        what could not be read is a check in state `unknown`.
        """
