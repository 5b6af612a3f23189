// The workspaces page: the caller's workspaces with their provisioning status, and a form
// that creates one (and starts provisioning it) and then opens its page.

import { SignedOut, TENANT_STATUS, api, el, errorText, whenSignedIn } from "./common.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 20;
const FIELDS = ["name", "country_code", "category", "admin_name", "admin_email", "admin_password"];
let page = 1;

async function loadList() {
  let answer;
  try {
    answer = await api("GET", `/api/v1/tenants?page=${page}&size=${PAGE_SIZE}`);
  } catch (error) {
    if (!(error instanceof SignedOut)) $("list-note").textContent = "The service cannot be reached.";
    return;
  }
  if (!answer.ok) {
    $("list-note").textContent = errorText(answer.data);
    return;
  }
  const { items, total } = answer.data;
  $("list-note").textContent = total
    ? `${total} ${total === 1 ? "workspace" : "workspaces"}`
    : "No workspaces yet: create one below.";
  $("workspaces").querySelector("tbody").replaceChildren(...items.map(row));
  $("page-previous").hidden = page <= 1;
  $("page-next").hidden = page * PAGE_SIZE >= total;
}

function row(tenant) {
  const status = tenant.provisioning_status;
  return el(
    "tr",
    { dataset: { tenantId: tenant.id } },
    el("td", {}, el("a", { href: `/workspaces/${tenant.id}`, text: tenant.name })),
    el("td", { text: tenant.country_code }),
    el(
      "td",
      {},
      el("span", {
        class: `badge status-${status.toLowerCase()}`,
        dataset: { status },
        text: TENANT_STATUS[status] || status,
      }),
    ),
    el("td", { text: new Date(tenant.created_at).toLocaleString() }),
  );
}

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const button = form.querySelector("button[type=submit]");
  const message = $("create-message");
  message.textContent = "";
  for (const field of FIELDS) showFieldError(field, "");
  const body = Object.fromEntries(FIELDS.map((field) => [field, form.elements[field].value.trim()]));
  body.admin_password = form.elements.admin_password.value;
  if (!body.category) delete body.category;
  button.disabled = true;
  try {
    const answer = await api("POST", "/api/v1/tenants", body);
    if (answer.status === 201) {
      window.location.assign(`/workspaces/${answer.data.tenant.id}`);
      return;
    }
    const details = answer.data?.error?.details || {};
    let first = null;
    for (const field of FIELDS) {
      if (Array.isArray(details[field])) {
        showFieldError(field, details[field].join(" "));
        first = first || form.elements[field];
      }
    }
    message.textContent = errorText(answer.data, "The workspace could not be created.");
    if (first) first.focus();
  } catch (error) {
    if (!(error instanceof SignedOut)) message.textContent = "The service cannot be reached.";
  } finally {
    button.disabled = false;
  }
}

function showFieldError(field, text) {
  $(`create-${field}-error`).textContent = text;
  $(`create-${field}`).setAttribute("aria-invalid", text ? "true" : "false");
}

$("create-form").addEventListener("submit", create);
$("page-previous").addEventListener("click", () => {
  page -= 1;
  loadList();
});
$("page-next").addEventListener("click", () => {
  page += 1;
  loadList();
});
whenSignedIn(loadList);
