"""The workspace pages in a real headless Chromium, against the real API, database and worker."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.helpers import WALK_IN, new_tenant, start, wait_run
from tests.integration.conftest import make_user

pytestmark = pytest.mark.browser
RUN_TIMEOUT = 60_000  # ms: a whole run, waited for as a state the page reaches

# Every step status and run status the page shows, in the order in which the page saw them.
RECORD_STATES = """
window.seen = [];
const last = {};
new MutationObserver(() => {
  for (const node of document.querySelectorAll("#steps > li[data-step], #run-status")) {
    const key = node.dataset.step || "run";
    if (node.dataset.status && last[key] !== node.dataset.status) {
      last[key] = node.dataset.status;
      window.seen.push([key, node.dataset.status]);
    }
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""
DONE = {"completed", "skipped", "failed", "cancelled", "COMPLETED", "PARTIAL", "FAILED"}


@pytest.fixture
def admin(app_ctx):
    return make_user(admin=True)


def sign_in(page: Page, user) -> None:
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(user.email)
    page.get_by_label("Password", exact=True).fill("user-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#main")).to_be_visible()


def open_workspace(page: Page, tenant_id, user) -> None:
    page.goto(f"/workspaces/{tenant_id}")
    sign_in(page, user)


def step(page: Page, name: str):
    return page.locator(f"#steps > li[data-step='{name}']")


def run_status(page: Page):
    return page.get_by_role("status").and_(page.locator("#run-status"))


def test_create_a_workspace_from_the_form_and_watch_every_step_complete(
    page, admin, worker, sim, screenshot
):
    page.add_init_script(RECORD_STATES)
    name = f"Browser Shop {uuid.uuid4().hex[:6].upper()}"
    page.goto("/workspaces")
    sign_in(page, admin)

    page.get_by_label("Workspace name").fill(name)
    page.get_by_label("Country").select_option("KE")
    page.get_by_label("Business type").select_option("retail")
    page.get_by_label("Owner's name").fill("Browser Owner")
    page.get_by_label("Owner's email").fill(f"owner-{uuid.uuid4().hex[:6]}@example.com")
    page.get_by_label("Owner's password").fill("owner-password")
    page.get_by_role("button", name="Create workspace").click()

    page.wait_for_url(re.compile(r"/workspaces/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(run_status(page)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(page.locator("#live-note")).to_have_attribute("data-mode", "live")
    expect(page.locator("#progress")).to_have_js_property("value", 100)
    expect(page.locator("#progress-text")).to_contain_text("100%")
    steps = page.locator("#steps > li")
    expect(steps).to_have_count(9)
    for item in steps.all():
        expected = (
            "Skipped" if item.get_attribute("data-step") == "create_demo_items" else "Completed"
        )
        expect(item.locator(".state-label")).to_have_text(expected)
        expect(item.locator(".meta")).to_contain_text("attempt")
    expect(step(page, "create_company").locator(".meta")).to_contain_text("took")
    for action in ("Retry", "Continue", "Cancel", "Start provisioning"):
        expect(page.get_by_role("button", name=action, exact=True)).to_be_hidden()
    screenshot("workspace-completed")

    # Once done, a step or the run is never shown as anything else: only server states, in order.
    seen: list[list[str]] = page.evaluate("window.seen")
    for key in {key for key, _ in seen}:
        states = [state for k, state in seen if k == key]
        first_done = next((i for i, state in enumerate(states) if state in DONE), len(states))
        assert len(set(states[first_done:])) == 1, (key, states)

    page.get_by_role("link", name="All workspaces").click()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row.locator(".badge")).to_have_text("Provisioned")
    screenshot("workspaces-list")


def test_a_failed_step_shows_the_engines_message_and_retry_completes_the_run(
    page, admin, worker, sim, screenshot
):
    message = "Parent Warehouse All Warehouses - XX does not exist"
    sim.add_fault(kind="error", status=417, exc_type="ValidationError", message=message,
                  method="POST", path="^/api/resource/Warehouse$")  # fmt: skip
    tenant = new_tenant()
    start(tenant)
    open_workspace(page, tenant.id, admin)

    expect(run_status(page)).to_have_text("Failed", timeout=RUN_TIMEOUT)
    failed = step(page, "create_warehouses")
    expect(failed.locator(".state-label")).to_have_text("Failed")
    expect(failed.locator(".error")).to_contain_text(f"ERPNext said: {message}")
    expect(failed.locator(".error")).to_contain_text("HTTP 417, ValidationError")
    expect(step(page, "create_pos_profile").locator(".state-label")).to_have_text("Not reached")
    # Skip only where allowed: a non-critical step that is not done; never a critical one.
    expect(
        step(page, "configure_settings").get_by_role("button", name=re.compile("^Skip"))
    ).to_be_visible()
    expect(step(page, "create_pos_profile").get_by_role("button")).to_have_count(0)
    expect(step(page, "check_engine").get_by_role("button")).to_have_count(0)
    retry = page.get_by_role("button", name="Retry", exact=True)
    expect(retry).to_be_visible()
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_hidden()
    page.locator("#log summary").click()
    expect(page.locator("#log-entries")).to_contain_text("step failed")
    screenshot("workspace-failed")

    sim.clear_faults()
    retry.focus()
    page.keyboard.press("Enter")  # keyboard users steer the run too

    expect(run_status(page)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(failed.locator(".state-label")).to_have_text("Completed")
    expect(failed.locator(".error")).to_have_count(0)
    expect(page.locator("#log-entries")).to_contain_text("run retry")
    screenshot("workspace-retried")


def test_cancel_stops_the_run_then_skip_and_continue_finish_it(
    page, admin, worker, sim, screenshot
):
    sim.add_fault(kind="latency", seconds=5, method="POST", path="^/api/resource/Company$",
                  count=1)  # fmt: skip
    tenant = new_tenant()
    start(tenant)
    open_workspace(page, tenant.id, admin)

    expect(step(page, "create_company").locator(".state-label")).to_have_text("Running")
    expect(run_status(page)).to_have_text("In progress")
    page.get_by_role("button", name="Cancel", exact=True).click()

    expect(run_status(page)).to_have_text("Cancelled")
    expect(run_status(page)).to_have_attribute("data-status", "CANCELLED")
    expect(step(page, "create_company").locator(".state-label")).to_have_text("Cancelled")
    expect(page.locator("#steps > li[data-status='running']")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_hidden()
    screenshot("workspace-cancelled")

    step(page, "configure_settings").get_by_role("button", name=re.compile("^Skip")).click()
    expect(step(page, "configure_settings").locator(".state-label")).to_have_text("Skipped")
    page.get_by_role("button", name="Continue", exact=True).click()
    expect(run_status(page)).to_have_text("Partly completed", timeout=RUN_TIMEOUT)
    expect(step(page, "open_pos_session").locator(".state-label")).to_have_text("Completed")


def test_without_the_live_process_the_page_polls_and_still_follows_the_run(
    page, app, admin, worker, sim, monkeypatch, screenshot
):
    monkeypatch.setitem(app.config, "LIVE_PUBLIC_URL", "http://127.0.0.1:1")  # nobody there
    tenant = new_tenant()
    open_workspace(page, tenant.id, admin)

    expect(run_status(page)).to_have_text("Not provisioned yet")
    expect(page.locator("#live-note")).to_have_text(
        "Live updates unavailable; refreshing every 2 seconds."
    )
    expect(page.locator("#jobs")).to_contain_text(re.compile("No site jobs|Site jobs unavailable"))
    page.get_by_role("button", name="Start provisioning").click()

    expect(run_status(page)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(page.locator("#live-note")).to_have_attribute("data-mode", "polling")
    screenshot("workspace-polling")


def test_verify_now_shows_the_drift_in_plain_words_and_repair_mends_it(
    page, admin, worker, sim, engine, screenshot
):
    tenant = new_tenant()
    run = wait_run(start(tenant))
    main_store = run.meta["main_warehouse"]
    open_workspace(page, tenant.id, admin)
    summary = page.get_by_role("status").and_(page.locator("#verification-summary"))
    verify = page.get_by_role("button", name="Verify now")
    repair = page.get_by_role("button", name="Repair", exact=True)

    expect(run_status(page)).to_have_text("Completed")
    expect(summary).to_have_text("Not verified yet.")
    expect(repair).to_be_hidden()
    verify.click()
    expect(summary).to_have_text("Checked just now — everything in place")
    expect(verify).to_be_visible()

    # Drift made through the engine's REST API, as a person would in ERPNext.
    engine.update("Customer", WALK_IN, {"disabled": 1})
    engine.update("Warehouse", main_store, {"disabled": 1})
    verify.click()

    expect(summary).to_have_text("Checked just now — 2 documents are not as provisioned:")
    drift = page.get_by_role("list", name="Documents not as provisioned")
    expect(drift.get_by_role("listitem")).to_have_text(
        [f"Warehouse {main_store} is disabled", f"Customer {WALK_IN} is disabled"]
    )
    screenshot("workspace-drifted")
    repair.focus()
    page.keyboard.press("Enter")  # keyboard users repair too

    expect(page.locator("#steps > li")).to_have_count(2, timeout=RUN_TIMEOUT)  # the REPAIR run
    expect(run_status(page)).to_have_text("Completed", timeout=RUN_TIMEOUT)
    expect(summary).to_have_text("Checked just now — everything in place", timeout=RUN_TIMEOUT)
    expect(drift.get_by_role("listitem")).to_have_count(0)
    expect(repair).to_be_hidden()
    screenshot("workspace-repaired")
