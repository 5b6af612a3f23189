from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from provisioner.steps.base import Check, Step, StepContext, StepResult

OPEN: list[list[Any]] = [["status", "=", "Open"], ["docstatus", "=", 1]]
STAMP = "%Y-%m-%d %H:%M:%S"


class OpenPosSession(Step):
    """Exactly one open POS Opening Entry for the profile.

    ERPNext accepts several open entries for one profile and user; the one-session rule is
    ours, kept by looking for an open entry first under a per-site lock on the profile.
    The entry is created submitted in one call, so no draft is ever left behind.
    """

    name = "open_pos_session"
    title = "Open the POS session"
    lock_waits = 1
    critical = False
    requires = ("create_pos_profile",)

    def run(self, ctx: StepContext) -> StepResult:
        profile = ctx.need("pos_profile", "create_pos_profile")
        company = ctx.need("company", "create_company")
        modes = ctx.metadata.get("payment_methods") or [
            m.mode for m in ctx.template.payment_methods
        ]
        notes: list[str] = []
        with ctx.lock(f"POS Opening Entry:{profile}"):
            open_entries = ctx.engine.get_list(
                "POS Opening Entry",
                filters=[["pos_profile", "=", profile], *OPEN],
                order_by="creation asc",
                limit=0,
            )
            if open_entries:
                entry, created = open_entries[0]["name"], False
                if len(open_entries) > 1:
                    notes.append(
                        f"{len(open_entries)} open sessions exist for {profile}; "
                        "left them as they are"
                    )
            else:
                made = ctx.engine.insert(
                    "POS Opening Entry",
                    {
                        "pos_profile": profile,
                        "company": company,
                        "user": ctx.metadata.get("engine_user") or ctx.engine.logged_user(),
                        "period_start_date": local_now(ctx.tenant.timezone),
                        "balance_details": [
                            {"mode_of_payment": mode, "opening_amount": 0} for mode in modes
                        ],
                        "docstatus": 1,
                    },
                )
                entry, created = made["name"], True
        return StepResult(
            result={"opening_entry": entry, "created": created},
            metadata={"pos_opening_entry": entry},
            notes=notes,
        )

    def verify(self, ctx: StepContext) -> list[Check]:
        """Nothing to keep: a session is business state. It is closed at the end of a day
        and a new one opened by the cashier; a closed or missing session is normal use, not
        drift, and repairing it would open sessions nobody asked for."""
        return []


def local_now(timezone: str) -> str:
    """Now on the workspace's wall clock: ERPNext keeps the naive time as given, and the
    session starts in the shop's day, not in the worker's."""
    return datetime.now(ZoneInfo(timezone)).strftime(STAMP)
