from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from provisioner.steps.base import Check, CheckState, Step, StepContext, StepResult
from provisioner.steps.checks import check_documents, doc_by_name, same_value

SETTINGS = ("Selling Settings", "Stock Settings")
# Metadata: doctype -> {field: value} this workspace relies on (set by it, found so, or
# relied on by an earlier run).
RELIED_ON = "settings_relied_on"


@dataclass
class Merge:
    changes: dict[str, Any] = field(default_factory=dict)  # fields to write
    kept: dict[str, Any] = field(default_factory=dict)  # differing values left alone


def merge(
    current: Mapping[str, Any], wanted: Mapping[str, Any], *, overwrite: bool | Collection[str]
) -> Merge:
    """What to write so that `wanted` holds, without undoing values someone else set.

    ERPNext leaves empty fields out of a GET: a missing field is empty and ours to fill.
    A field with another value is changed only when `overwrite` says so: True for every
    field (the site is the tenant's own), or the names of the fields that may be restored.
    """
    out = Merge()
    for fieldname, value in wanted.items():
        have = current.get(fieldname)
        may_overwrite = overwrite if isinstance(overwrite, bool) else fieldname in overwrite
        if have in (None, "") or (may_overwrite and not same_value(have, value)):
            out.changes[fieldname] = value
        elif not same_value(have, value):
            out.kept[fieldname] = have
    return out


class ConfigureSettings(Step):
    """Selling Settings and Stock Settings have the POS values: read, merge, write if changed.

    Both are shared by every company on the site; on a shared site a value another tenant
    set is left alone, and the result says so. The fields the workspace then relies on
    (written by it, found with its value, or relied on by an earlier run) are recorded: they
    are what `verify` checks, and what a REPAIR run (`options.repair`) restores, even on a
    shared site.
    """

    name = "configure_settings"
    title = "Configure selling and stock settings"
    lock_waits = 2  # one per settings document (SETTINGS)
    critical = False

    def run(self, ctx: StepContext) -> StepResult:
        done = StepResult()
        relied: dict[str, dict[str, Any]] = {}
        for doctype in SETTINGS:
            wanted = wanted_settings(ctx, doctype)
            with ctx.lock(f"single:{doctype}"):
                current = ctx.engine.get_single(doctype)
                plan = merge(current, wanted, overwrite=self._may_overwrite(ctx, doctype))
                if plan.changes:
                    ctx.engine.update_single(doctype, plan.changes)
            # Once relied on, always: a plain run that finds the value changed leaves it
            # alone on a shared site, but it stays this workspace's to check and restore.
            before = relied_on(ctx, doctype) or {}
            relied[doctype] = {k: v for k, v in wanted.items() if k in before or k not in plan.kept}
            done.result[doctype] = {"changed": plan.changes, "kept": plan.kept}
            done.notes.extend(
                f"{doctype}: left {name} = {have!r} (wanted {wanted[name]!r}); the site is shared"
                for name, have in plan.kept.items()
            )
        done.metadata[RELIED_ON] = relied
        return done

    def verify(self, ctx: StepContext) -> list[Check]:
        """The fields this workspace relies on still hold; a value another tenant of a
        shared site had set, and that this workspace left alone, is not its to check."""
        checks: list[Check] = []
        for doctype in SETTINGS:
            relied = relied_on(ctx, doctype)
            if relied is None:
                why = (
                    f"{doctype}: the values this workspace relies on were not recorded on this "
                    "shared site; run configure_settings again to record them"
                )
                checks.append(Check(self.name, doctype, doctype, CheckState.UNKNOWN, message=why))
                continue
            read = partial(doc_by_name, ctx.engine, doctype, doctype)  # a single's name
            checks.extend(check_documents(self.name, doctype, [doctype], read, relied))
        return checks

    @staticmethod
    def _may_overwrite(ctx: StepContext, doctype: str) -> bool | Collection[str]:
        if not ctx.tenant.shared_site:
            return True
        if ctx.options.repair:
            return tuple(relied_on(ctx, doctype) or ())
        return False


def wanted_settings(ctx: StepContext, doctype: str) -> Mapping[str, Any]:
    template = ctx.template
    return template.selling_settings if doctype == "Selling Settings" else template.stock_settings


def relied_on(ctx: StepContext, doctype: str) -> Mapping[str, Any] | None:
    """The recorded fields of `doctype` this workspace relies on. Before they were recorded,
    a site of its own relied on every template value; on a shared site it is not known."""
    recorded = (ctx.metadata.get(RELIED_ON) or {}).get(doctype)
    if recorded is not None:
        return dict(recorded)
    return None if ctx.tenant.shared_site else wanted_settings(ctx, doctype)
