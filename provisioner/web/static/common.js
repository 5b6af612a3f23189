// Shared by the workspace pages: sign-in, API calls with the bearer token, DOM helpers.
// The token lives in sessionStorage: it ends with the browser tab.

const TOKEN_KEY = "provisioner.token";

export const RUN_STATUS = {
  PENDING: "Queued",
  IN_PROGRESS: "In progress",
  COMPLETED: "Completed",
  PARTIAL: "Partly completed",
  FAILED: "Failed",
  CANCELLED: "Cancelled",
};

export const TENANT_STATUS = {
  NOT_PROVISIONED: "Not provisioned",
  PROVISIONING: "Provisioning",
  PROVISIONED: "Provisioned",
  PARTIAL: "Partly provisioned",
  FAILED: "Failed",
};

export class SignedOut extends Error {}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Call the JSON API; resolves to {status, ok, data}. A 401 shows the sign-in form. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn("Your session has ended; please sign in again.");
    throw new SignedOut();
  }
  const data = await response.json().catch(() => null);
  return { status: response.status, ok: response.ok, data };
}

/** The API's error body in plain words, with the fields it names. */
export function errorText(data, fallback = "Something went wrong; please try again.") {
  const error = data && data.error;
  if (!error) return fallback;
  const details = error.details && typeof error.details === "object" ? error.details : {};
  const fields = Object.entries(details)
    .filter(([, messages]) => Array.isArray(messages))
    .map(([field, messages]) => `${field}: ${messages.join(" ")}`);
  return [error.message, ...fields].join(" — ");
}

/** Create an element: el("li", {class: "x", dataset: {step: "a"}}, "text", child…). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function formatTime(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

const signIn = () => document.getElementById("sign-in");
const main = () => document.getElementById("main");
let onSignedIn = null;

function showSignIn(message = "") {
  main().hidden = true;
  document.getElementById("sign-out").hidden = true;
  signIn().hidden = false;
  document.getElementById("sign-in-message").textContent = message;
  document.getElementById("sign-in-email").focus();
}

function showMain() {
  signIn().hidden = true;
  document.getElementById("sign-out").hidden = false;
  main().hidden = false;
}

/** Run `start` once signed in: now if a token is kept, else after the sign-in form. */
export function whenSignedIn(start) {
  onSignedIn = start;
  document.getElementById("sign-in-form").addEventListener("submit", submitSignIn);
  document.getElementById("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    window.location.reload();
  });
  if (token()) {
    showMain();
    start();
  } else {
    showSignIn();
  }
}

async function submitSignIn(event) {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button");
  button.disabled = true;
  const message = document.getElementById("sign-in-message");
  message.textContent = "";
  try {
    const response = await fetch("/api/v1/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ email: form.email.value, password: form.password.value }),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      message.textContent = errorText(data, "Signing in failed; please try again.");
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, data.access_token);
    form.reset();
    showMain();
    main().focus();
    onSignedIn();
  } catch {
    message.textContent = "The service cannot be reached; please try again.";
  } finally {
    button.disabled = false;
  }
}
