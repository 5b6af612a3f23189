from __future__ import annotations

from datetime import datetime

from provisioner.steps.base import Step, StepContext, StepResult

OPEN = [["status", "=", "Open"], ["docstatus", "=", 1]]


class OpenPosSession(Step):
    """Exactly one open POS Opening Entry for the profile.

    ERPNext accepts several open entries for one profile and user; the one-session rule is
    ours, kept by looking for an open entry first under a per-site lock on the profile.
    The entry is created submitted in one call, so no draft is ever left behind.
    """

    name = "open_pos_session"
    title = "Open the POS session"
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
                        "period_start_date": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
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
