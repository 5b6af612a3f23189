"""One ERPNext site's data in memory: documents by doctype and name, singles, and the
list queries Frappe answers (`filters`, `fields`, `order_by`, paging)."""

from __future__ import annotations

import copy
import fnmatch
import itertools
import threading
from datetime import datetime
from typing import Any

from provisioner.simulator.doctypes import DOCTYPES
from provisioner.simulator.errors import ServerError, ValidationError

Doc = dict[str, Any]
META_FIELDS = ("name", "owner", "creation", "modified", "docstatus", "idx")


def now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")


class SiteData:
    """Documents of one site. Every access happens under `lock` (held by the caller)."""

    def __init__(self, name: str, api_key: str, api_secret: str) -> None:
        self.name = name
        self.keys: dict[str, str] = {api_key: api_secret}
        self.lock = threading.RLock()
        self.docs: dict[str, dict[str, Doc]] = {}
        self.singles: dict[str, Doc] = {}
        self.series: dict[str, int] = {}
        self._order = itertools.count(1)
        # Documents being built right now, and how many of each were built: for collisions.
        self.in_progress: dict[str, dict[str, str]] = {}
        self.builds: dict[str, int] = {}
        self.last_company_abbr = ""
        self.wizard_running = False

    # -- documents -------------------------------------------------------------------------

    def table(self, doctype: str) -> dict[str, Doc]:
        return self.docs.setdefault(doctype, {})

    def get(self, doctype: str, name: str) -> Doc | None:
        return self.table(doctype).get(name)

    def known(self, doctype: str, name: str) -> Doc:
        """A document the caller knows is there (a link that was validated, a fixture)."""
        doc = self.get(doctype, name)
        if doc is None:
            raise KeyError(f"{doctype} {name} was expected on site {self.name}")
        return doc

    def exists(self, doctype: str, name: Any) -> bool:
        return isinstance(name, str) and name in self.table(doctype)

    def put(self, doctype: str, doc: Doc) -> Doc:
        stamp = now()
        doc.setdefault("owner", "Administrator")
        doc.setdefault("creation", stamp)
        doc.setdefault("docstatus", 0)
        spec = DOCTYPES.get(doctype)
        for check in spec.checks if spec else ():  # a Check field never set is 0, as in Frappe
            if doc.get(check) is None:
                doc[check] = 0
        doc["modified"] = stamp
        doc["doctype"] = doctype
        doc["_order"] = doc.get("_order") or next(self._order)
        self.table(doctype)[doc["name"]] = doc
        return doc

    def remove(self, doctype: str, name: str) -> None:
        self.table(doctype).pop(name, None)

    def next_in_series(self, prefix: str) -> str:
        self.series[prefix] = self.series.get(prefix, 0) + 1
        return f"{prefix}{self.series[prefix]:05d}"

    def single(self, doctype: str) -> Doc:
        return self.singles.setdefault(doctype, {})

    # -- queries ---------------------------------------------------------------------------

    def query(
        self,
        doctype: str,
        *,
        filters: Any = None,
        fields: list[str] | None = None,
        order_by: str | None = None,
        start: int = 0,
        length: int = 20,
    ) -> list[Doc]:
        conditions = normalize_filters(filters)
        rows = [d for d in self.table(doctype).values() if all(c.matches(d) for c in conditions)]
        rows = order(rows, order_by)
        rows = rows[start:] if length == 0 else rows[start : start + length]
        wanted = fields or ["name"]
        if "*" in wanted:
            return [public(d) for d in rows]
        return [{f: copy.deepcopy(d.get(f)) for f in wanted} for d in rows]

    def count(self, doctype: str, filters: Any = None) -> int:
        conditions = normalize_filters(filters)
        return sum(all(c.matches(d) for c in conditions) for d in self.table(doctype).values())

    # -- persistence -----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """A copy of the documents, to roll a failed multi-document request back to."""
        return copy.deepcopy({"docs": self.docs, "singles": self.singles, "series": self.series})

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.docs = snapshot["docs"]
        self.singles = snapshot["singles"]
        self.series = snapshot["series"]

    def dump(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "keys": self.keys,
            "docs": self.docs,
            "singles": self.singles,
            "series": self.series,
        }

    @classmethod
    def load(cls, data: dict[str, Any]) -> SiteData:
        key, secret = next(iter(data["keys"].items()))
        site = cls(data["name"], key, secret)
        site.keys = dict(data["keys"])
        site.docs = data["docs"]
        site.singles = data["singles"]
        site.series = data["series"]
        highest = max((d["_order"] for t in site.docs.values() for d in t.values()), default=0)
        site._order = itertools.count(highest + 1)
        return site


def public(doc: Doc) -> Doc:
    """A document's columns: no internal keys, child rows copied."""
    return {k: copy.deepcopy(v) for k, v in doc.items() if not k.startswith("_")}


def shown(doc: Doc) -> Doc:
    """A document as a GET, POST or PUT answers it: Frappe serializes documents without
    their null fields (child rows too); 0 and "" stay."""
    return {
        k: [shown(r) if isinstance(r, dict) else r for r in v] if isinstance(v, list) else v
        for k, v in public(doc).items()
        if v is not None
    }


class Condition:
    OPERATORS = ("=", "!=", "like", "not like", "in", "not in", ">", "<", ">=", "<=", "is")

    def __init__(self, field: str, op: str, value: Any) -> None:
        op = op.lower()
        if op not in self.OPERATORS:
            raise ServerError("ValueError", f"Operator must be one of {', '.join(self.OPERATORS)}")
        self.field, self.op, self.value = field, op, value

    def matches(self, doc: Doc) -> bool:
        have = doc.get(self.field)
        if self.op == "is":
            return (have not in (None, "")) == (str(self.value).lower() == "set")
        if self.op in ("in", "not in"):
            values = self.value if isinstance(self.value, list) else str(self.value).split(",")
            inside = str(have) in {str(v).strip() for v in values}
            return inside if self.op == "in" else not inside
        if self.op in ("like", "not like"):
            pattern = str(self.value).replace("%", "*").replace("_", "?")
            hit = fnmatch.fnmatchcase(str(have or "").lower(), pattern.lower())
            return hit if self.op == "like" else not hit
        if self.op in ("=", "!="):
            equal = _comparable(have) == _comparable(self.value)
            return equal if self.op == "=" else not equal
        left, right = _comparable(have), _comparable(self.value)
        try:
            return {">": left > right, "<": left < right, ">=": left >= right,
                    "<=": left <= right}[self.op]  # fmt: skip
        except TypeError:
            return False


def _comparable(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def normalize_filters(filters: Any) -> list[Condition]:
    """Frappe's filter forms: [[field, op, value]], [[doctype, field, op, value]],
    {field: value} and {field: [op, value]}."""
    if not filters:
        return []
    if isinstance(filters, dict):
        out = []
        for field, value in filters.items():
            if isinstance(value, list | tuple) and len(value) == 2:
                out.append(Condition(field, value[0], value[1]))
            else:
                out.append(Condition(field, "=", value))
        return out
    if not isinstance(filters, list):
        raise ServerError("ValidationError", "filters must be a list or a dict")
    out = []
    for item in filters:
        if not isinstance(item, list | tuple) or len(item) not in (3, 4):
            raise ValidationError(
                f"Filter must have 4 values (doctype, fieldname, operator, value): {item}"
            )
        field, op, value = item[-3:]
        out.append(Condition(field, op, value))
    return out


def order(rows: list[Doc], order_by: str | None) -> list[Doc]:
    """`order_by` like "creation asc" or "name desc"; Frappe's default is newest first."""
    spec = (order_by or "modified desc").replace("`", "").strip().split()
    field = spec[0].split(".")[-1]
    descending = len(spec) > 1 and spec[1].lower() == "desc"
    return sorted(
        rows,
        key=lambda d: (_comparable(d.get(field)) if field not in ("creation", "modified")
                       else d["_order"], d["_order"]),
        reverse=descending,
    )  # fmt: skip
