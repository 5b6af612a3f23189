from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provisioner.steps.base import Step, StepContext, StepResult


@dataclass
class Merge:
    changes: dict[str, Any] = field(default_factory=dict)  # fields to write
    kept: dict[str, Any] = field(default_factory=dict)  # differing values left alone


def merge(current: Mapping[str, Any], wanted: Mapping[str, Any], *, overwrite: bool) -> Merge:
    """What to write so that `wanted` holds, without undoing values someone else set.

    ERPNext leaves empty fields out of a GET: a missing field is empty and ours to fill.
    A field with another value is changed only when the site is the tenant's own.
    """
    out = Merge()
    for fieldname, value in wanted.items():
        have = current.get(fieldname)
        if have in (None, "") or (overwrite and str(have) != str(value)):
            out.changes[fieldname] = value
        elif str(have) != str(value):
            out.kept[fieldname] = have
    return out


class ConfigureSettings(Step):
    """Selling Settings and Stock Settings have the POS values: read, merge, write if changed.

    Both are shared by every company on the site; on a shared site a value another tenant
    set is left alone, and the result says so.
    """

    name = "configure_settings"
    title = "Configure selling and stock settings"
    critical = False

    def run(self, ctx: StepContext) -> StepResult:
        done = StepResult()
        wanted_by_doctype = {
            "Selling Settings": ctx.template.selling_settings,
            "Stock Settings": ctx.template.stock_settings,
        }
        for doctype, wanted in wanted_by_doctype.items():
            with ctx.lock(f"single:{doctype}"):
                current = ctx.engine.get_single(doctype)
                plan = merge(current, wanted, overwrite=not ctx.tenant.shared_site)
                if plan.changes:
                    ctx.engine.update_single(doctype, plan.changes)
            done.result[doctype] = {"changed": plan.changes, "kept": plan.kept}
            done.notes.extend(
                f"{doctype}: left {name} = {have!r} (wanted {wanted[name]!r}); the site is shared"
                for name, have in plan.kept.items()
            )
        return done
