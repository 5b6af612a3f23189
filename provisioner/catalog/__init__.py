"""Reference data kept as data: countries and the business templates (retail, restaurant…)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from provisioner.steps.base import BusinessTemplate, DemoItem, PaymentMethod

DEFAULT_TEMPLATE = "retail"
STANDARD_CHART = "Standard"


@dataclass(frozen=True)
class Country:
    code: str
    name: str  # ERPNext's spelling
    currency: str
    timezone: str
    chart: str  # what the platform asks for; the engine may not offer it


def _load(name: str) -> Any:
    return json.loads(resources.files(__package__).joinpath(name).read_text(encoding="utf-8"))


@cache
def countries() -> dict[str, Country]:
    raw = _load("countries.json")
    return {
        code: Country(code, v["name"], v["currency"], v["timezone"], v.get("chart", STANDARD_CHART))
        for code, v in raw.items()
        if not code.startswith("_")
    }


@cache
def templates() -> dict[str, BusinessTemplate]:
    folder = resources.files(__package__).joinpath("templates")
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            name = entry.name.removesuffix(".json")
            out[name] = _template(name, json.loads(entry.read_text(encoding="utf-8")))
    return out


def template_for(name: str | None) -> BusinessTemplate:
    """The named template, or the default one for an unknown or missing category."""
    return templates().get(name or DEFAULT_TEMPLATE) or templates()[DEFAULT_TEMPLATE]


def _template(name: str, raw: dict[str, Any]) -> BusinessTemplate:
    return BusinessTemplate(
        name=name,
        title=raw["title"],
        selling_settings=raw["selling_settings"],
        stock_settings=raw["stock_settings"],
        payment_methods=tuple(PaymentMethod(**m) for m in raw["payment_methods"]),
        demo_items=tuple(DemoItem(**i) for i in raw["demo_items"]),
    )
