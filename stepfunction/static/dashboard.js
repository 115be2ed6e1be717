// Manual StepFunction Dashboard: lists a Kinto collection's manual steps, answers them.
// Record text only ever reaches the page through textContent, never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
const bucket = params.get("bucket") || "stepfunction";
const collection = params.get("collection") || "manual_steps";
// This page is <server>/v1/stepfunction/dashboard/: the API is <server>/v1.
const API = new URL("../../", location.href).href.replace(/\/$/, "");
const RECORDS = `/buckets/${encodeURIComponent(bucket)}/collections/${encodeURIComponent(collection)}/records`;
const AUTH = "stepfunction-dashboard-auth";
const USER = "stepfunction-dashboard-user";
const REFRESH_MS = 60 * 1000;
let timer = null;

const $ = (id) => document.getElementById(id);
const STATUSES = ["UNANSWERED", "SUCCEED", "FAIL", "TIMED_OUT"];
// Records are data anyone with write access shaped: a field of another type shows as
// "invalid", never breaks the page.
const statusOf = (record) => {
  const status = record.status ?? "UNANSWERED";
  return STATUSES.includes(status) ? status : "INVALID";
};
const textOf = (value) => {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(", ");
  return "";
};
const nameOf = (record) => textOf(record.subject) || String(record.id);

function say(text, kind) {
  $("message").textContent = text;
  $("message").className = kind;
  $("message").hidden = !text;
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return btoa(String.fromCharCode(...bytes));
}

// fetch() on the API, with the stored credentials; a non-2xx answer throws an Error carrying
// Kinto's error message and the HTTP status.
async function call(url, options = {}) {
  const headers = { Authorization: `Basic ${sessionStorage.getItem(AUTH)}` };
  if (options.body) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url.startsWith("http") ? url : API + url, { ...options, headers });
  } catch (e) {
    throw new Error("the server could not be reached");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((body && body.message) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return { body, response };
}

async function load() {
  const records = [];
  try {
    let url = `${RECORDS}?_sort=-last_modified`;
    while (url) {
      const { body, response } = await call(url);
      records.push(...body.data);
      url = response.headers.get("Next-Page"); // Kinto paginates long lists.
    }
  } catch (error) {
    const why = {
      401: "You are not signed in.",
      403: `You are not allowed to read the steps in ${bucket}/${collection}.`,
      404: `There is no collection ${bucket}/${collection}.`,
    }[error.status];
    $("problem").textContent = why || `The steps could not be loaded: ${error.message}`;
    $("problem").hidden = false;
    $("table").hidden = $("empty").hidden = true;
    return;
  }
  $("problem").hidden = true;
  $("table").tBodies[0].replaceChildren(...records.map(row));
  $("table").hidden = records.length === 0;
  $("empty").hidden = records.some((record) => statusOf(record) === "UNANSWERED");
  $("updated").textContent = `updated at ${new Date().toLocaleTimeString()}`;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function row(record) {
  const tr = element("tr");
  tr.dataset.id = record.id;
  const status = statusOf(record);
  const badge = element("td", null, "status");
  badge.append(element("span", status, status.toLowerCase()));
  tr.append(
    element("td", nameOf(record), "subject"),
    element("td", textOf(record.reviewer), "reviewer"),
    badge,
    actions(record, status),
  );
  return tr;
}

function actions(record, status) {
  const td = element("td", null, "actions");
  if (status !== "UNANSWERED") return td;
  const accept = element("button", "Accept", "accept");
  const reason = element("input", null, "reason");
  reason.placeholder = "Reason (optional)";
  reason.setAttribute("aria-label", `Reason for rejecting ${nameOf(record)}`);
  const reject = element("button", "Reject", "reject");
  accept.addEventListener("click", () => answer(record, { answer: "SUCCEED" }, td));
  reject.addEventListener("click", () => {
    const cause = reason.value.trim();
    answer(record, cause ? { answer: "FAIL", cause } : { answer: "FAIL" }, td);
  });
  td.append(accept, reason, reject);
  return td;
}

async function answer(record, body, td) {
  td.querySelectorAll("button, input").forEach((control) => (control.disabled = true));
  say(`Sending ${body.answer} for “${nameOf(record)}”…`, "info");
  try {
    const url = `${RECORDS}/${encodeURIComponent(record.id)}/stepfunction`;
    const { body: result } = await call(url, { method: "POST", body: JSON.stringify(body) });
    say(`“${nameOf(record)}” answered: ${statusOf(result.data)}.`, "ok");
  } catch (error) {
    say(`“${nameOf(record)}” was not answered: ${error.message}`, "error");
  }
  await load();
}

// The periodic refresh leaves alone a reason being typed.
function refresh() {
  const reasons = [...document.querySelectorAll(".reason:not(:disabled)")];
  if (!reasons.some((input) => input.value || input === document.activeElement)) load();
}

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("steps").hidden = $("account").hidden = !signedIn;
  clearInterval(timer);
  if (!signedIn) return;
  $("user").textContent = sessionStorage.getItem(USER);
  $("where").textContent = `${bucket}/${collection}`;
  timer = setInterval(refresh, REFRESH_MS);
  load();
}

$("signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  sessionStorage.setItem(AUTH, basic(form.user.value, form.password.value));
  try {
    // Kinto names the authenticated user in its root answer, and nobody otherwise.
    const { body } = await call("/");
    if (!body.user) throw new Error("those credentials were refused");
    sessionStorage.setItem(USER, form.user.value);
    form.reset();
    say("", "");
    show(true);
  } catch (error) {
    sessionStorage.removeItem(AUTH);
    say(`Could not sign in: ${error.message}.`, "error");
  }
});

$("signout").addEventListener("click", (event) => {
  event.preventDefault();
  sessionStorage.removeItem(AUTH);
  sessionStorage.removeItem(USER);
  say("Signed out.", "info");
  show(false);
});

$("refresh").addEventListener("click", load);

show(Boolean(sessionStorage.getItem(AUTH)));
