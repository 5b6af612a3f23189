// The workspace page: a workspace's provisioning, live.
//
// Only server state is drawn. State comes from one ordered source at a time: the
// Server-Sent Events stream of the live process (one frame per committed change) or,
// while the stream cannot be opened, a sequential poll of …/status every 2 s. Switching
// between them drops answers still in flight from the other, so an older state never
// replaces a newer one. A stream that ends (its time is up, or it was dropped) is opened
// again at once with a fresh ticket and the version shown, so nothing is sent twice. Buttons send commands and show their refusals; what the command
// changed arrives through the same stream or poll. The latest verification is read when
// the page opens and whenever the run's status changes (a repair run verifies when it
// ends), and every 2 s while one is under way.

import {
  RUN_STATUS,
  SignedOut,
  api,
  el,
  errorText,
  formatDuration,
  formatTime,
  whenSignedIn,
} from "./common.js";

const $ = (id) => document.getElementById(id);
const tenantId = $("main").dataset.tenantId;
const BASE = `/api/v1/provisioning/tenants/${tenantId}`;
const LIVE = $("main").dataset.liveUrl || ""; // the live process's origin, if not this one
const POLL_MS = 2000;
const MAX_RECONNECT_MS = 30000;
const JOBS_POLL_MS = 5000; // while a site job is under way
const VERIFY_POLL_MS = 2000; // while a verification is pending or running
const CLOCK_MS = 30000; // "checked 3 minutes ago" is written again this often

const STEP_STATE = {
  pending: ["○", "Pending"],
  running: ["◔", "Running"],
  retrying: ["↻", "Retrying"],
  waiting: ["⏸", "Waiting for ERPNext"],
  completed: ["✓", "Completed"],
  failed: ["✗", "Failed"],
  skipped: ["–", "Skipped"],
  not_reached: ["·", "Not reached"],
  cancelled: ["⊘", "Cancelled"],
};
const ACTIVE = ["PENDING", "IN_PROGRESS"];
const RESUMABLE = ["FAILED", "PARTIAL", "CANCELLED"];
const RERUNNABLE = ["failed", "not_reached", "cancelled"];
const ACTIONS = ["start", "retry", "continue", "cancel"];
const VERIFYING = ["pending", "running"];

let shown; // the state drawn last: a run status, null (no run yet) or undefined (nothing yet)
let source = null; // the open EventSource, if any
let polling = false;
let generation = 0; // bumped whenever polling stops: its late answers are dropped
let pollTimer = null;
let reconnectTimer = null;
let reconnectDelay = 1000;
let lastEventId = ""; // the version of the state shown, as the stream numbers it
let jobsTimer = null;
let logRunId = null;
let lastLogId = 0;
let verification; // the latest verification drawn, null (never verified) or undefined
let verificationTimer = null;

// -- updates: the stream, else polling ----------------------------------------------------

function showMode(mode) {
  const note = $("live-note");
  note.dataset.mode = mode;
  note.textContent =
    mode === "live"
      ? "Live updates on."
      : "Live updates unavailable; refreshing every 2 seconds.";
}

async function connect() {
  clearTimeout(reconnectTimer);
  stopPolling(); // one source at a time: the stream's first frame is newer than any poll
  closeStream();
  let issued;
  try {
    issued = await api("POST", `${BASE}/events/ticket`);
  } catch (error) {
    if (error instanceof SignedOut) return stopUpdates();
    issued = { ok: false };
  }
  if (!issued.ok) return fallBack();
  const query = new URLSearchParams({ ticket: issued.data.ticket });
  if (lastEventId) query.set("last_event_id", lastEventId);
  const stream = new EventSource(`${LIVE}${BASE}/events?${query}`);
  let opened = false;
  source = stream;
  stream.addEventListener("open", () => {
    if (source !== stream) return;
    opened = true;
    reconnectDelay = 1000;
    showMode("live");
  });
  const receive = (state) => (event) => {
    if (source !== stream) return;
    lastEventId = event.lastEventId;
    render(state(event));
  };
  stream.addEventListener("status", receive((event) => JSON.parse(event.data)));
  stream.addEventListener("idle", receive(() => null));
  // EventSource would reconnect with the same (by then expired) ticket: open a new one.
  stream.addEventListener("error", () => {
    if (source !== stream) return;
    if (opened) {
      closeStream();
      reconnectTimer = setTimeout(connect, 250);
    } else fallBack();
  });
}

function fallBack() {
  closeStream();
  startPolling();
  reconnectTimer = setTimeout(connect, reconnectDelay);
  reconnectDelay = Math.min(reconnectDelay * 2, MAX_RECONNECT_MS);
}

function closeStream() {
  if (source) source.close();
  source = null;
}

function startPolling() {
  if (polling) return;
  polling = true;
  showMode("polling");
  const mine = generation;
  const tick = async () => {
    try {
      const answer = await api("GET", `${BASE}/status`);
      if (mine !== generation) return;
      if (answer.ok) render(answer.data);
      else if (answer.data?.error?.code === "no_run") render(null);
    } catch (error) {
      if (error instanceof SignedOut) return stopUpdates();
      // unreachable for now: try again at the next tick
    }
    if (mine === generation) pollTimer = setTimeout(tick, POLL_MS);
  };
  tick();
}

function stopPolling() {
  generation += 1;
  clearTimeout(pollTimer);
  polling = false;
}

function stopUpdates() {
  clearTimeout(reconnectTimer);
  stopPolling();
  closeStream();
}

// -- drawing --------------------------------------------------------------------------------

function render(status) {
  const focusKey = document.activeElement?.dataset?.focusKey;
  const previous = shown;
  shown = status;
  announce(previous, status);
  drawOverview(status);
  drawActions(status);
  drawSteps(status);
  drawVerificationActions();
  restoreFocus(focusKey);
  if ($("log").open) loadLog();
  if (previous === undefined || previous?.status !== status?.status) {
    loadJobs();
    loadVerification();
  }
}

function drawOverview(status) {
  const badge = $("run-status");
  const code = status ? status.status : "NOT_PROVISIONED";
  const text = status ? RUN_STATUS[code] || code : "Not provisioned yet";
  if (badge.textContent !== text) badge.textContent = text; // a live region: say changes only
  badge.dataset.status = code;
  badge.className = `badge status-${code.toLowerCase()}`;
  const progress = status ? status.progress : 0;
  $("progress").value = progress;
  $("progress-text").textContent = status
    ? `${progress}% · ${status.steps_completed} of ${status.total_steps} steps completed`
    : "";
  drawEngineWait(status?.waiting_for_engine);
}

// A run waiting for its ERPNext to answer again: it goes on by itself, say so and when.
function drawEngineWait(waiting) {
  const note = $("engine-wait");
  note.hidden = !waiting;
  if (!waiting) return;
  const next = waiting.next_probe_at ? ` It is asked again at ${formatTime(waiting.next_probe_at)}.` : "";
  note.textContent =
    `ERPNext is not answering (since ${formatTime(waiting.since)}): provisioning waits and goes on by itself when it is back; nothing needs doing.${next}` +
    (waiting.reason ? ` Last answer: ${waiting.reason}` : "");
}

function drawActions(status) {
  const resumable = status && RESUMABLE.includes(status.status);
  const steps = status ? status.steps : [];
  const visible = {
    start: status === null,
    retry: resumable && steps.some((s) => s.status === "failed"),
    continue: resumable && steps.some((s) => RERUNNABLE.includes(s.status)),
    cancel: Boolean(status && ACTIVE.includes(status.status)),
  };
  for (const action of ACTIONS) {
    const button = $(`action-${action}`);
    button.hidden = !visible[action];
    button.disabled = false;
  }
}

function drawSteps(status) {
  const list = $("steps");
  if (!status) {
    list.replaceChildren(el("li", { class: "note", text: "No provisioning run yet." }));
    return;
  }
  list.replaceChildren(...status.steps.map(stepItem));
}

function stepItem(step) {
  const [icon, label] = STEP_STATE[step.status] || ["?", step.status];
  const kind = step.optional ? "optional" : step.critical ? "critical" : "non-critical";
  const item = el(
    "li",
    { class: `step status-${step.status}`, dataset: { step: step.name, status: step.status } },
    el(
      "div",
      { class: "step-head" },
      el(
        "span",
        { class: "state" },
        el("span", { "aria-hidden": "true", text: icon }),
        " ",
        el("span", { class: "state-label", text: label }),
      ),
      el("span", { class: "step-title", text: step.title }),
      el("code", { text: step.name }),
      el("span", { class: "tag", text: kind }),
    ),
    el("p", { class: "meta", text: stepMeta(step) }),
  );
  if (step.note) item.append(el("p", { class: "note", text: step.note }));
  if (step.error && ["failed", "retrying", "waiting"].includes(step.status)) item.append(stepError(step));
  const skippable = (!step.critical || step.optional) && !["completed", "skipped"].includes(step.status);
  if (skippable) {
    const button = el("button", {
      type: "button",
      class: "secondary",
      text: "Skip",
      "aria-label": `Skip: ${step.title}`,
      dataset: { focusKey: `skip-${step.name}` },
    });
    button.addEventListener("click", () => act("skip-step", { step: step.name }));
    item.append(button);
  }
  return item;
}

function stepMeta(step) {
  const parts = [`${step.attempts} ${step.attempts === 1 ? "attempt" : "attempts"}`];
  if (step.manual_attempts) parts.push(`${step.manual_attempts} by hand`);
  if (step.duration_ms !== null) parts.push(`took ${formatDuration(step.duration_ms)}`);
  else if (step.status === "running") parts.push(`started ${formatTime(step.started_at)}`);
  if (["retrying", "waiting"].includes(step.status) && step.next_attempt_at) {
    parts.push(`next attempt at ${formatTime(step.next_attempt_at)}`);
  }
  return parts.join(" · ");
}

function stepError(step) {
  const { message, engine } = step.error;
  const box = el("div", { class: "error" });
  box.append(el("p", { text: engine ? `ERPNext said: ${message}` : message }));
  if (engine && (engine.status || engine.exc_type)) {
    const answered = [engine.status && `HTTP ${engine.status}`, engine.exc_type].filter(Boolean);
    box.append(el("p", { class: "detail", text: `(${answered.join(", ")})` }));
  }
  return box;
}

function announce(previous, status) {
  if (!previous || !status || previous.run_id !== status.run_id) return;
  const before = Object.fromEntries(previous.steps.map((s) => [s.name, s.status]));
  const changes = status.steps
    .filter((s) => before[s.name] !== s.status)
    .map((s) => `${s.title}: ${(STEP_STATE[s.status] || ["", s.status])[1].toLowerCase()}`);
  if (changes.length) $("announcer").textContent = `${changes.join(". ")}.`;
}

function restoreFocus(focusKey, fallback = $("run-status")) {
  if (!focusKey) return;
  const again = document.querySelector(`[data-focus-key="${focusKey}"]`);
  if (again && !again.hidden) again.focus();
  else fallback.focus();
}

// -- commands -------------------------------------------------------------------------------

// `scope`: the buttons that wait for the answer; `after`: what to read again once accepted.
async function act(command, body = {}, { scope = "#main", messageId = "action-message", after } = {}) {
  const message = $(messageId);
  message.textContent = "";
  const buttons = document.querySelectorAll(`${scope} button`);
  buttons.forEach((button) => (button.disabled = true));
  try {
    const answer = await api("POST", `${BASE}/${command}`, body);
    if (!answer.ok) {
      message.textContent = errorText(answer.data);
      buttons.forEach((button) => (button.disabled = false));
      return;
    }
    if (after) after();
    if (polling) {
      stopPolling();
      startPolling(); // fetch the new state now rather than at the next tick
    }
    // On success the buttons come back with the next state the server sends.
  } catch (error) {
    if (error instanceof SignedOut) return;
    message.textContent = "The service cannot be reached; please try again.";
    buttons.forEach((button) => (button.disabled = false));
  }
}

// -- verification ----------------------------------------------------------------------------

async function loadVerification() {
  clearTimeout(verificationTimer);
  let answer;
  try {
    answer = await api("GET", `${BASE}/verification`);
  } catch (error) {
    if (error instanceof SignedOut) return;
    answer = { status: 0 };
  }
  if (answer.ok) drawVerification(answer.data);
  else if (answer.data?.error?.code === "not_verified") drawVerification(null);
  else setText($("verification-summary"), "Verification unavailable.");
  if (answer.ok && VERIFYING.includes(answer.data.status)) {
    verificationTimer = setTimeout(loadVerification, VERIFY_POLL_MS);
  }
}

function drawVerification(found) {
  const focusKey = document.activeElement?.dataset?.focusKey;
  verification = found;
  const summary = $("verification-summary");
  summary.dataset.status = found ? found.status : "never";
  setText(summary, verificationText(found));
  const wrong = found && !VERIFYING.includes(found.status) ? notInPlace(found) : [];
  $("verification-drift").replaceChildren(
    ...wrong.map((check) => el("li", { dataset: { state: check.state }, text: check.message })),
  );
  drawVerificationActions();
  restoreFocus(focusKey, summary);
}

function verificationText(found) {
  if (found === null) return "Not verified yet.";
  if (found.status === "pending") return "Verification queued…";
  if (found.status === "running") return "Checking the documents in ERPNext…";
  const checked = `Checked ${ago(found.checked_at)}`;
  if (found.status === "ok") return `${checked} — everything in place`;
  const drifted = found.checks.filter((c) => ["missing", "changed"].includes(c.state)).length;
  if (found.status === "drifted") {
    const what = drifted === 1 ? "1 document is" : `${drifted} documents are`;
    return `${checked} — ${what} not as provisioned:`;
  }
  return `${checked} — not everything could be checked: ${found.error || "ERPNext could not be read"}`;
}

function notInPlace(found) {
  return found.checks.filter((check) => check.state !== "ok");
}

function drawVerificationActions() {
  const runActive = Boolean(shown && ACTIVE.includes(shown.status));
  const verifying = Boolean(verification && VERIFYING.includes(verification.status));
  const verify = $("action-verify");
  const repair = $("action-repair");
  verify.hidden = !shown || verifying; // nothing to verify before a run
  repair.hidden = !(verification?.status === "drifted") || runActive;
  verify.disabled = repair.disabled = false;
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  const [amount, unit] =
    seconds < 45 ? [0, ""]
    : seconds < 3600 ? [Math.max(1, Math.round(seconds / 60)), "minute"]
    : seconds < 86400 ? [Math.round(seconds / 3600), "hour"]
    : [Math.round(seconds / 86400), "day"];
  if (!amount) return "just now";
  return `${amount} ${unit}${amount === 1 ? "" : "s"} ago`;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text; // a live region: say changes only
}

// -- log and site jobs -----------------------------------------------------------------------

async function loadLog() {
  if (!shown) return;
  if (logRunId !== shown.run_id) {
    logRunId = shown.run_id;
    lastLogId = 0;
    $("log-entries").replaceChildren();
  }
  const runId = logRunId;
  let answer;
  try {
    answer = await api("GET", `${BASE}/logs?run_id=${runId}&after=${lastLogId}&limit=1000`);
  } catch {
    return;
  }
  if (!answer.ok || runId !== logRunId) return;
  for (const entry of answer.data.events) {
    if (entry.id <= lastLogId) continue; // a concurrent load added it already
    lastLogId = entry.id;
    $("log-entries").append(
      el(
        "li",
        {},
        el("time", { datetime: entry.created_at, text: formatTime(entry.created_at) }),
        " ",
        entry.step ? el("code", { text: entry.step }) : null,
        ` ${entry.kind.replaceAll("_", " ")}`,
        entry.message ? `: ${entry.message}` : "",
        entry.duration_ms !== null ? ` (${formatDuration(entry.duration_ms)})` : "",
      ),
    );
  }
}

async function loadJobs() {
  clearTimeout(jobsTimer);
  const box = $("jobs");
  let answer;
  try {
    answer = await api("GET", `/api/v1/provisioning/jobs?tenant_id=${tenantId}`);
  } catch (error) {
    if (error instanceof SignedOut) return;
    answer = { status: 0 };
  }
  if (answer.status !== 200) {
    box.replaceChildren(el("p", { class: "note", text: "Site jobs unavailable." }));
    return;
  }
  const jobs = answer.data?.items || [];
  if (jobs.some((job) => ["pending", "running"].includes(job.status))) {
    jobsTimer = setTimeout(loadJobs, JOBS_POLL_MS);
  }
  if (!jobs.length) {
    box.replaceChildren(el("p", { class: "note", text: "No site jobs." }));
    return;
  }
  box.replaceChildren(
    el(
      "ul",
      { class: "jobs" },
      ...jobs.map((job) =>
        el(
          "li",
          { dataset: { status: job.status } },
          el("strong", { text: job.job_type.replaceAll("_", " ") }),
          ` — ${job.status} (${job.progress}%)`,
          job.error?.message || job.message ? `: ${job.error?.message || job.message}` : "",
          el("span", { class: "detail", text: ` ${formatTime(job.created_at)}` }),
        ),
      ),
    ),
  );
}

// -- start ------------------------------------------------------------------------------------

async function start() {
  stopUpdates();
  shown = undefined;
  lastEventId = "";
  let tenant;
  try {
    tenant = await api("GET", `/api/v1/tenants/${tenantId}`);
  } catch (error) {
    if (error instanceof SignedOut) return;
    $("run-status").textContent = "The service cannot be reached; reload the page to try again.";
    return;
  }
  if (!tenant.ok) {
    $("workspace-name").textContent = "Workspace unavailable";
    $("run-status").textContent = errorText(tenant.data);
    return;
  }
  $("workspace-name").textContent = tenant.data.name;
  document.title = `${tenant.data.name} · Provisioner`;
  connect();
}

$("action-start").addEventListener("click", () => act("start"));
$("action-retry").addEventListener("click", () => act("retry"));
$("action-continue").addEventListener("click", () => act("continue"));
$("action-cancel").addEventListener("click", () => act("cancel"));
const IN_VERIFICATION = { scope: "#verification", messageId: "verification-message" };
$("action-verify").addEventListener("click", () =>
  act("verify", {}, { ...IN_VERIFICATION, after: loadVerification }),
);
// Accepted, the repair run's first state arrives through the stream and reads this again.
$("action-repair").addEventListener("click", () => act("repair", {}, IN_VERIFICATION));
for (const action of [...ACTIONS, "verify", "repair"]) {
  $(`action-${action}`).dataset.focusKey = action;
}
setInterval(() => verification && drawVerification(verification), CLOCK_MS);
$("log").addEventListener("toggle", () => $("log").open && loadLog());
whenSignedIn(start);
