"""Insert, update, delete and read documents of one site the way Frappe does.

The generic part (mandatory fields, links, selects, child tables, duplicates, submitted
documents) is here; doctype-specific behaviour comes from `controllers`. Creating a
Company is done in two phases around its build time so that two creations overlapping
on one site collide as they do on real ERPNext (see the contract's concurrency section).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from provisioner.simulator.controllers import controller
from provisioner.simulator.doctypes import CHILD_DOCTYPES, DOCTYPES, DocType, label
from provisioner.simulator.errors import (
    DoesNotExistError,
    LinkExistsError,
    MandatoryError,
    PermissionError_,
    ServerError,
    ValidationError,
    already_exists,
    missing_link,
    not_found,
)
from provisioner.simulator.store import Doc, SiteData, shown

Pause = Callable[[float], None]  # sleeps, outside the site's lock
RACE_WINDOW = {"Company": 0.03, "Customer": 0.005}  # seconds, even with zero latency


def meta(doctype: str) -> DocType:
    if doctype in CHILD_DOCTYPES:
        raise PermissionError_(f"No permission for {doctype}")
    spec = DOCTYPES.get(doctype)
    if spec is None:
        module = doctype.lower().replace(" ", "_")
        raise ServerError("ImportError", f"No module named 'frappe.core.doctype.{module}'")
    return spec


def first_link(site: SiteData, doctype: str, name: str, ignore: tuple[str, ...]) -> str | None:
    """The first document (not cancelled) whose link field or child row points at this one,
    as Frappe's delete names it: "POS Profile <strong>X</strong>" (" at Row: N")."""
    itself = site.get(doctype, name)
    for spec in DOCTYPES.values():
        if spec.single or spec.name in ignore:
            continue
        fields = [f for f, target in spec.links.items() if target == doctype]
        tables = [(t, f) for t, (target, f) in spec.child_links.items() if target == doctype]
        if not fields and not tables:
            continue
        for other in site.table(spec.name).values():
            if other is itself or int(other.get("docstatus") or 0) == 2:
                continue
            where = f"{spec.name} <strong>{other['name']}</strong>"
            if any(other.get(f) == name for f in fields):
                return where
            for table, fieldname in tables:
                for idx, row in enumerate(other.get(table) or [], start=1):
                    if row.get(fieldname) == name:
                        return f"{where} at Row: {idx}"
    return None


class Documents:
    def __init__(self, site: SiteData, pause: Pause, build_time: Callable[[str], float]) -> None:
        self.site = site
        self._pause = pause
        self._build_time = build_time

    # -- reads -----------------------------------------------------------------------------

    def get(self, doctype: str, name: str) -> Doc:
        spec = meta(doctype)
        with self.site.lock:
            if spec.single:
                return self._single_view(spec)
            doc = self.site.get(doctype, name)
            if doc is None:
                raise not_found(doctype, name)
            return shown(doc)

    # -- writes ----------------------------------------------------------------------------

    def insert(self, doctype: str, body: dict[str, Any]) -> tuple[Doc, str | None]:
        """The new document and ERPNext's remark about it (a rename), if any."""
        spec = meta(doctype)
        if spec.single:
            raise ServerError("AttributeError", f"'{doctype}' is a single doctype")
        if not body and doctype in ("Warehouse", "Customer"):
            raise ServerError("AttributeError", "'NoneType' object has no attribute 'lower'")
        window = max(self._build_time(doctype), RACE_WINDOW.get(doctype, 0.0))
        with self.site.lock:
            doc = self._prepare(spec, body)
            message = doc.pop("_message", None)
            reservation = self._reserve(doctype, doc)
        try:
            self._pause(window)
            with self.site.lock:
                self._check_collision(doctype, doc, reservation)
                return self._commit(spec, doc), message
        finally:
            with self.site.lock:
                self.site.in_progress.get(doctype, {}).pop(doc["name"], None)

    def update(self, doctype: str, name: str, body: dict[str, Any]) -> Doc:
        spec = meta(doctype)
        with self.site.lock:
            if spec.single:
                return self._update_single(spec, body)
            old = self.site.get(doctype, name)
            if old is None:
                raise not_found(doctype, name)
            doc = copy.deepcopy(old)
            was = int(old.get("docstatus") or 0)
            will = int(body["docstatus"]) if "docstatus" in body else was
            changes = {k: v for k, v in body.items() if k in spec.known_fields}
            if was == 1 and changes:
                raise ValidationError("Not allowed to change fields after submission",
                                      title="Cannot Update After Submit")  # fmt: skip
            if will < was or (will > 0 and not spec.submittable):
                raise ValidationError(f"Cannot change docstatus from {was} to {will}")
            doc.update(changes)
            doc["docstatus"] = will
            self._validate(spec, doc, old)
            stored = self.site.put(doctype, doc)
            if was == 0 and will == 1:
                controller(doctype).on_submit(self.site, stored)
            return shown(stored)

    def delete(self, doctype: str, name: str) -> None:
        meta(doctype)
        with self.site.lock:
            doc = self.site.get(doctype, name)
            if doc is None:
                raise DoesNotExistError(bare=True)
            if int(doc.get("docstatus") or 0) == 1:
                raise ValidationError(
                    "Submitted Record cannot be deleted. You must cancel it first."
                )
            hooks = controller(doctype)
            link = first_link(self.site, doctype, name, ignore=hooks.cascades)
            if link is not None:
                raise LinkExistsError(
                    f"Cannot delete or cancel because {doctype} <strong>{name}</strong> is "
                    f"linked with {link}"
                )
            hooks.on_trash(self.site, doc)
            self.site.remove(doctype, name)

    # -- the pipeline ----------------------------------------------------------------------

    def _prepare(self, spec: DocType, body: dict[str, Any]) -> Doc:
        doc = {k: copy.deepcopy(v) for k, v in body.items() if k in spec.known_fields}
        for key in ("name", "__newname"):
            if key in body:
                doc[key] = body[key]
        docstatus = int(body.get("docstatus") or 0)
        if docstatus not in (0, 1) or (docstatus and not spec.submittable):
            raise ValidationError(f"Cannot set docstatus {docstatus} on a new {spec.name}")
        doc["docstatus"] = docstatus
        controller(spec.name).before_insert(self.site, doc)
        if not doc.get("name") and spec.autoname:
            doc["name"] = doc.get(spec.autoname)
        doc.setdefault("name", "")
        self._validate(spec, doc, None)
        if self.site.exists(spec.name, doc["name"]):
            raise already_exists(spec.name, doc["name"])
        return doc

    def _validate(self, spec: DocType, doc: Doc, old: Doc | None) -> None:
        missing = [f for f in spec.mandatory if doc.get(f) in (None, "", [])]
        if missing:
            raise MandatoryError(f"[{spec.name}, {doc.get('name') or ''}]: {', '.join(missing)}")
        for fieldname, target in spec.links.items():
            value = doc.get(fieldname)
            if value not in (None, "") and not self.site.exists(target, value):
                raise missing_link(label(fieldname), value)
        for fieldname, options in spec.selects.items():
            value = doc.get(fieldname)
            if value not in (None, "") and value not in options:
                allowed = ", ".join(f'"{o}"' for o in options)
                raise ValidationError(
                    f'{label(fieldname)} cannot be "{value}". It should be one of {allowed}'
                )
        for table, (target, fieldname) in spec.child_links.items():
            for i, row in enumerate(doc.get(table) or [], start=1):
                if not isinstance(row, dict):
                    raise ServerError("AttributeError", "'str' object has no attribute 'get'")
                value = row.get(fieldname)
                if value not in (None, "") and not self.site.exists(target, value):
                    raise missing_link(f"Row #{i}: {label(fieldname)}", value)
        controller(spec.name).validate(self.site, doc, old)

    def _reserve(self, doctype: str, doc: Doc) -> int:
        """Mark the document as being built; a same-name insert meanwhile is a duplicate."""
        building = self.site.in_progress.setdefault(doctype, {})
        if doc["name"] in building:
            raise already_exists(doctype, doc["name"])
        building[doc["name"]] = doc.get("abbr", "")
        return self.site.builds.get(doctype, 0)

    def _check_collision(self, doctype: str, doc: Doc, reservation: int) -> None:
        """Two companies built at once both rewrite the Cash mode of payment's accounts: the
        later one fails, fully rolled back, naming the other's Cash account."""
        if doctype != "Company":
            return
        if self.site.builds.get(doctype, 0) != reservation:
            other = self.site.last_company_abbr
            row = len((self.site.get("Mode of Payment", "Cash") or {}).get("accounts", [])) + 1
            raise missing_link(f"Row #{row}: Default Account", f"Cash - {other}")

    def _commit(self, spec: DocType, doc: Doc) -> Doc:
        if self.site.exists(spec.name, doc["name"]):
            raise already_exists(spec.name, doc["name"])
        stored = self.site.put(spec.name, doc)
        hooks = controller(spec.name)
        hooks.after_insert(self.site, stored)
        if stored["docstatus"] == 1:
            hooks.on_submit(self.site, stored)
        self.site.builds[spec.name] = self.site.builds.get(spec.name, 0) + 1
        if spec.name == "Company":
            self.site.last_company_abbr = stored["abbr"]
        return shown(stored)

    # -- singles ---------------------------------------------------------------------------

    def _single_view(self, spec: DocType) -> Doc:
        values = {k: v for k, v in self.site.single(spec.name).items() if v not in (None, "")}
        return {"name": spec.name, "doctype": spec.name, **values}

    def _update_single(self, spec: DocType, body: dict[str, Any]) -> Doc:
        changes = {k: v for k, v in body.items() if k in spec.known_fields}  # others ignored
        merged = {**self.site.single(spec.name), **changes}
        self._validate(spec, merged, merged)
        self.site.single(spec.name).update(changes)
        return self._single_view(spec)
