"""What `verify` shares: comparing a document with the fields it must have, in plain words.

ERPNext leaves empty fields out of a GET and a Check field reads 0 when it was never set,
so an absent value equals 0 and "" here; `same_value` is also what `ensure` and the
settings merge use, so that verify and repair never disagree about what drifted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from provisioner.engine import EngineClient, EngineError
from provisioner.steps.base import Check, CheckState

Doc = Mapping[str, Any]
# How a differing field is said; the default is "<label>: <field> is <have>, … needs <want>".
PHRASES = {
    "disabled": "{label} is disabled",
    "payment_methods": "{label} has no payment method {missing}",
    "accounts_for": "{label} has no account for {missing}",
}


def same_value(have: Any, want: Any) -> bool:
    """Whether a value read from the engine is the wanted one (a list: contains all of it)."""
    if isinstance(want, list | tuple):
        return set(want) <= set(have or [])
    if isinstance(want, int | float):
        try:
            return float(have or 0) == float(want)
        except (TypeError, ValueError):
            return False
    return str(have if have is not None else "") == str(want)


def differing(doc: Doc, must: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `must` that `doc` does not have, with the values they must take."""
    return {name: want for name, want in must.items() if not same_value(doc.get(name), want)}


def label(doctype: str, name: str) -> str:
    return doctype if doctype == name else f"{doctype} {name}"


def describe(doctype: str, name: str, field: str, have: Any, want: Any) -> str:
    missing = (
        ", ".join(str(w) for w in want if w not in (have or [])) if isinstance(want, list) else ""
    )
    default = "{label}: {field} is {have}, the point of sale needs {want}"
    return PHRASES.get(field, default).format(
        label=label(doctype, name),
        field=field,
        have="empty" if have in (None, "") else have,
        want=want,
        missing=missing,
    )


def document_check(
    step: str, doctype: str, name: str, doc: Doc | None, must: Mapping[str, Any]
) -> Check:
    """One document against the fields it must have: missing, changed or ok."""
    expected = dict(must)
    if doc is None:
        return Check(step, doctype, name, CheckState.MISSING, expected,
                     message=f"{label(doctype, name)} is missing")  # fmt: skip
    actual = {field: doc.get(field) for field in must}
    wrong = differing(doc, must)
    if not wrong:
        return Check(step, doctype, name, CheckState.OK, expected, actual)
    message = "; ".join(describe(doctype, name, f, actual[f], want) for f, want in wrong.items())
    return Check(step, doctype, name, CheckState.CHANGED, expected, actual, message)


def check_documents(
    step: str,
    doctype: str,
    names: Iterable[str],
    read: Callable[[], Mapping[str, Doc]],
    must: Mapping[str, Any],
) -> list[Check]:
    """Read documents (by name) once, then check each; if the engine cannot be read, each
    check is `unknown` and says why."""
    names = list(names)
    try:
        docs = read()
    except EngineError as exc:
        return [
            Check(step, doctype, name, CheckState.UNKNOWN, dict(must),
                  message=f"{label(doctype, name)} could not be read: {exc.message}")
            for name in names
        ]  # fmt: skip
    return [document_check(step, doctype, name, docs.get(name), must) for name in names]


def rows_by_name(
    engine: EngineClient,
    doctype: str,
    names: Iterable[str],
    fields: Iterable[str],
    filters: list[list[Any]] | None = None,
) -> dict[str, Doc]:
    """Several documents with the fields asked for, in one engine read."""
    rows = engine.get_list(
        doctype,
        filters=[["name", "in", list(names)], *(filters or [])],
        fields=["name", *fields],
        limit=0,
    )
    return {row["name"]: row for row in rows}


def doc_by_name(engine: EngineClient, doctype: str, name: str) -> dict[str, Doc]:
    """One whole document (child tables too), keyed by its name; empty when it is missing."""
    doc = engine.get_doc(doctype, name)
    return {name: doc} if doc is not None else {}


def check_rows(
    engine: EngineClient,
    step: str,
    doctype: str,
    names: Iterable[str],
    must: Mapping[str, Any],
    *,
    filters: list[list[Any]] | None = None,
) -> list[Check]:
    """Documents read in one list call with the fields they must have, each checked."""
    names = list(names)
    return check_documents(
        step, doctype, names, lambda: rows_by_name(engine, doctype, names, must, filters), must
    )
