"""The one table between the step vocabularies, and the pure translations built on it."""

from __future__ import annotations

import copy

from provisioner.schemas import dialects
from provisioner.schemas.dialects import PAGE_STEP_IDS, Dialect
from provisioner.steps import STEP_NAMES


def document(status: str = "PENDING", current: str | None = None) -> dict:
    steps = [
        {"name": name, "status": "completed" if i < 2 else "pending", "title": name}
        for i, name in enumerate(STEP_NAMES)
    ]
    return {
        "run_id": "r-1",
        "status": status,
        "current_step": current,
        "progress": 22,
        "steps_completed": 2,
        "total_steps": len(steps),
        "steps": steps,
        "errors": [{"step": "create_company", "status": "retrying", "message": "busy"}],
        "started_at": None,
    }


def untranslated(doc: dict) -> dict:
    translated = ("status", "current_step", "progress", "steps", "errors")
    return {key: value for key, value in doc.items() if key not in translated}


def test_every_step_has_one_page_identifier_and_back():
    assert list(PAGE_STEP_IDS) == list(STEP_NAMES)
    assert len(set(PAGE_STEP_IDS.values())) == len(STEP_NAMES)
    for name, page in PAGE_STEP_IDS.items():
        assert dialects.step_name(page) == dialects.step_name(name) == name
        assert dialects.page_step_id(name) == page
    assert dialects.step_name("step_1_nothing") == "step_1_nothing"  # refused by validation


def test_the_page_status_names_its_steps_and_knows_no_pending():
    doc = document()
    before = copy.deepcopy(doc)

    page = dialects.status_document(doc, Dialect.PAGE)

    assert doc == before  # the snapshot itself is never changed
    assert page["status"] == "IN_PROGRESS"
    assert page["current_step"] == "step_3_chart_of_accounts"  # the step it starts with
    assert page["progress"] == 22.0
    assert isinstance(page["progress"], float)
    assert [s["name"] for s in page["steps"]] == list(PAGE_STEP_IDS.values())
    assert page["errors"][0]["step"] == "step_2_company"
    assert untranslated(page) == untranslated(doc)
    assert dialects.status_document(doc, Dialect.PROVISIONER) is doc


def test_stream_frames_translate_status_and_keep_idle():
    idle = {"tenant_id": "t-1", "message": "not provisioned yet"}
    assert dialects.page_document(idle) is idle
    assert dialects.page_document(document()) == dialects.page_status(document())


def test_a_running_or_finished_run_keeps_its_own_current_step():
    running = dialects.page_status(document("IN_PROGRESS", "create_warehouses"))
    assert running["current_step"] == "step_4_warehouses"
    finished = dialects.page_status(document("FAILED", None))
    assert (finished["status"], finished["current_step"]) == ("FAILED", None)


def test_a_log_entry_in_the_pages_terms():
    event = {"id": 7, "step": "open_pos_session", "kind": "step_completed", "status": "completed",
             "attempt": 1, "message": None, "duration_ms": 41, "data": {"x": 1},
             "created_at": "2025-01-01T00:00:00+00:00"}  # fmt: skip

    entry = dialects.page_log_entry(event)

    assert entry == {
        "id": 7,
        "step": "step_9_pos_session",
        "kind": "step_completed",
        "status": "completed",
        "attempt": 1,
        "message": None,
        "completed_at": "2025-01-01T00:00:00+00:00",
        "duration_ms": 41,
    }
