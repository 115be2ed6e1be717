// Manual StepFunction Dashboard: the steps waiting for the signed-in user (the inbox), all the
// steps of a collection, one step in detail; answers them.
// Record text only ever reaches the page through textContent, never as HTML.
"use strict";

const params = new URLSearchParams(location.search);
const bucket = params.get("bucket") || "stepfunction";
const collection = params.get("collection") || "manual_steps";
// This page is <server>/v1/stepfunction/dashboard/: the API is <server>/v1.
const API = new URL("../../", location.href).href.replace(/\/$/, "");
const COLLECTION = `/buckets/${encodeURIComponent(bucket)}/collections/${encodeURIComponent(collection)}`;
const RECORDS = `${COLLECTION}/records`;
const INBOX = `${COLLECTION}/stepfunction/inbox`;
const HISTORY = `/buckets/${encodeURIComponent(bucket)}/history`;
const AUTH = "stepfunction-dashboard-auth"; // the Authorization header's value
const USER = "stepfunction-dashboard-user";
const PAGE_SIZE = 50;
const REFRESH_MS = 60 * 1000;
const OPENID_SCOPE = "openid email profile";
let timer = null;
let view = "inbox"; // "inbox", "all" or "step"
let shown = []; // the records listed
let nextPage = null; // the inbox's next page, if any

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
// A field as text: "—" when absent, "invalid" when of another type.
const fieldText = (value) => {
  if (value === undefined || value === null || value === "") return "—";
  return typeof value === "string" ? value : "invalid";
};
const json = (value) => {
  if (value === undefined) return "—";
  if (typeof value === "string") {
    try {
      return JSON.stringify(JSON.parse(value), null, 2);
    } catch (e) {
      return value;
    }
  }
  return JSON.stringify(value, null, 2);
};
const ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:(activity|stateMachine|execution):(.+)$/;
const arnName = (value, kind) => {
  const match = typeof value === "string" && ARN.exec(value);
  return match && match[1] === kind ? match[2] : null;
};

function say(text, kind) {
  $("message").textContent = text;
  $("message").className = kind;
  $("message").hidden = !text;
}

function basic(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

// fetch() on the API, with the stored credentials; a non-2xx answer throws an Error carrying
// Kinto's error message and the HTTP status.
async function call(url, options = {}) {
  const headers = {};
  const auth = sessionStorage.getItem(AUTH);
  if (auth) headers.Authorization = auth;
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

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

const stepLink = (record) => `#/steps/${encodeURIComponent(record.id)}`;

// --- Lists ------------------------------------------------------------------------------------

function problem(error) {
  const why = {
    401: "You are not signed in.",
    403: `You are not allowed to read the steps in ${bucket}/${collection}.`,
    404:
      view === "inbox"
        ? `${bucket}/${collection} holds no manual steps.`
        : `There is no collection ${bucket}/${collection}.`,
  }[error.status];
  return why || `The steps could not be loaded: ${error.message}`;
}

// The inbox: its first page (or the next one, with ``more``), filtered by the server.
async function inboxPage(more) {
  const url = more ? nextPage : `${INBOX}?_limit=${PAGE_SIZE}`;
  const { body, response } = await call(url);
  nextPage = response.headers.get("Next-Page");
  return more ? shown.concat(body.data) : body.data;
}

// Every step of the collection, newest first.
async function allSteps() {
  const records = [];
  let url = `${RECORDS}?_sort=-last_modified`;
  while (url) {
    const { body, response } = await call(url);
    records.push(...body.data);
    url = response.headers.get("Next-Page"); // Kinto paginates long lists.
  }
  nextPage = null;
  return records;
}

async function load(more = false) {
  const listed = view;
  let records;
  try {
    records = listed === "inbox" ? await inboxPage(more) : await allSteps();
  } catch (error) {
    if (view !== listed) return;
    $("problem").textContent = problem(error);
    $("problem").hidden = false;
    $("table").hidden = $("empty").hidden = $("more").hidden = true;
    return;
  }
  if (view !== listed) return; // the user went elsewhere meanwhile
  shown = records;
  $("problem").hidden = true;
  $("table").tBodies[0].replaceChildren(...records.map(row));
  $("table").hidden = records.length === 0;
  $("empty").hidden = records.some((record) => statusOf(record) === "UNANSWERED");
  $("more").hidden = !nextPage;
  $("updated").textContent = `updated at ${new Date().toLocaleTimeString()}`;
}

function row(record) {
  const tr = element("tr");
  tr.dataset.id = record.id;
  const status = statusOf(record);
  const badge = element("td", null, "status");
  badge.append(element("span", status, status.toLowerCase()));
  const subject = element("td", null, "subject");
  const link = element("a", nameOf(record));
  link.href = stepLink(record);
  subject.append(link);
  tr.append(subject, element("td", textOf(record.reviewer), "reviewer"), badge);
  tr.append(actions(record, status, element("td", null, "actions")));
  return tr;
}

function actions(record, status, container) {
  if (status !== "UNANSWERED") return container;
  const accept = element("button", "Accept", "accept");
  const reason = element("input", null, "reason");
  reason.placeholder = "Reason (optional)";
  reason.setAttribute("aria-label", `Reason for rejecting ${nameOf(record)}`);
  const reject = element("button", "Reject", "reject");
  accept.addEventListener("click", () => answer(record, { answer: "SUCCEED" }, container));
  reject.addEventListener("click", () => {
    const cause = reason.value.trim();
    answer(record, cause ? { answer: "FAIL", cause } : { answer: "FAIL" }, container);
  });
  container.append(accept, reason, reject);
  return container;
}

async function answer(record, body, container) {
  container.querySelectorAll("button, input").forEach((control) => (control.disabled = true));
  say(`Sending ${body.answer} for “${nameOf(record)}”…`, "info");
  try {
    const url = `${RECORDS}/${encodeURIComponent(record.id)}/stepfunction`;
    const { body: result } = await call(url, { method: "POST", body: JSON.stringify(body) });
    say(`“${nameOf(record)}” answered: ${statusOf(result.data)}.`, "ok");
  } catch (error) {
    say(`“${nameOf(record)}” was not answered: ${error.message}`, "error");
  }
  await render();
}

// --- One step ---------------------------------------------------------------------------------

// When the record was created: its history's creation entry, when the history plugin is
// there and lets the user read it; else null.
async function createdAt(id) {
  const query = new URLSearchParams({
    resource_name: "record",
    collection_id: collection,
    record_id: id,
    action: "create",
    _limit: "1",
  });
  try {
    const { body } = await call(`${HISTORY}?${query}`);
    return body.data.length ? body.data[0].last_modified : null;
  } catch (error) {
    return null;
  }
}

const when = (timestamp) => new Date(timestamp).toLocaleString();

function arnField(node, value, kind) {
  const name = arnName(value, kind);
  node.replaceChildren();
  if (value === undefined) return node.append("—");
  if (!name) return node.append("invalid");
  node.append(element("strong", name.split(":").pop()), " ", element("code", value, "arn"));
}

async function loadStep(id) {
  let record;
  let mayAnswer = false;
  try {
    ({ body: { data: record } } = await call(`${RECORDS}/${encodeURIComponent(id)}`));
    if (statusOf(record) === "UNANSWERED") {
      const { body } = await call(`${INBOX}?id=${encodeURIComponent(id)}`);
      mayAnswer = body.data.length > 0;
    }
  } catch (error) {
    if (view !== "step") return;
    const why = { 401: "You are not signed in.", 403: "You may not read this step." };
    $("detail-problem").textContent =
      why[error.status] || (error.status === 404 ? "There is no such step." : error.message);
    $("detail-problem").hidden = false;
    $("step").hidden = true;
    return;
  }
  const created = await createdAt(record.id);
  if (view !== "step") return;
  const status = statusOf(record);
  $("detail-problem").hidden = true;
  $("d-subject").textContent = nameOf(record);
  $("d-status").replaceChildren(element("span", status, status.toLowerCase()));
  arnField($("d-machine"), record.stateMachineArn, "stateMachine");
  arnField($("d-execution"), record.executionArn, "execution");
  if (record.stateMachineArn === undefined && arnName(record.executionArn, "execution")) {
    $("d-machine").textContent = arnName(record.executionArn, "execution").split(":")[0];
  }
  $("d-created").textContent = created
    ? when(created)
    : `unknown (last modified ${when(record.last_modified)})`;
  const given = record.answer;
  const audit = given && typeof given === "object" && !Array.isArray(given) ? given : {};
  const invalid = given !== undefined && audit !== given;
  $("d-by").textContent = invalid ? "invalid" : fieldText(audit.by);
  if (audit.source === "history") $("d-by").textContent = "— (read from the execution's history)";
  $("d-at").textContent = invalid ? "invalid" : fieldText(audit.at);
  $("d-output").textContent = invalid ? "invalid" : json(audit.output);
  $("d-error").textContent = invalid ? "invalid" : fieldText(audit.error);
  $("d-cause").textContent = invalid ? "invalid" : fieldText(audit.cause);
  $("d-input").textContent = json(record.input);
  $("d-actions").replaceChildren();
  if (mayAnswer) actions(record, status, $("d-actions"));
  $("step").hidden = false;
}

// --- Views ------------------------------------------------------------------------------------

function render() {
  // Views of their own files (executions.js) register under their hash.
  document.querySelectorAll("[data-view]").forEach((node) => {
    if (node.tagName === "A") node.classList.remove("current");
    else node.hidden = true;
  });
  const other = (window.dashboardViews || {})[location.hash];
  if (other) {
    view = location.hash;
    $("steps").hidden = $("detail").hidden = true;
    $("tab-inbox").classList.remove("current");
    $("tab-all").classList.remove("current");
    return other();
  }
  const step = /^#\/steps\/(.+)$/.exec(location.hash);
  view = step ? "step" : location.hash === "#/all" ? "all" : "inbox";
  $("steps").hidden = view === "step";
  $("detail").hidden = view !== "step";
  $("tab-inbox").classList.toggle("current", view === "inbox");
  $("tab-all").classList.toggle("current", view === "all");
  if (step) return loadStep(decodeURIComponent(step[1]));
  $("what").textContent = view === "inbox" ? "Steps waiting for you in" : "All the steps in";
  $("back").href = "#/inbox";
  return load();
}

// The periodic refresh leaves alone a reason being typed.
function refresh() {
  const reasons = [...document.querySelectorAll(".reason:not(:disabled)")];
  if (!reasons.some((input) => input.value || input === document.activeElement)) render();
}

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("views").hidden = $("account").hidden = !signedIn;
  clearInterval(timer);
  if (!signedIn) {
    $("steps").hidden = $("detail").hidden = true;
    return;
  }
  $("user").textContent = sessionStorage.getItem(USER);
  $("where").textContent = `${bucket}/${collection}`;
  timer = setInterval(refresh, REFRESH_MS);
  render();
}

// --- Signing in -------------------------------------------------------------------------------

// Signs in with that Authorization header: Kinto names the authenticated user in its root
// answer, and nobody otherwise.
async function signIn(authorization, name) {
  sessionStorage.setItem(AUTH, authorization);
  try {
    const { body } = await call("/");
    if (!body.user) throw new Error("those credentials were refused");
    sessionStorage.setItem(USER, name || body.user.id);
    say("", "");
    show(true);
  } catch (error) {
    sessionStorage.removeItem(AUTH);
    say(`Could not sign in: ${error.message}.`, "error");
    show(false);
  }
}

$("password").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  await signIn(basic(form.user.value, form.password.value), form.user.value);
  if (sessionStorage.getItem(AUTH)) form.reset();
});

// Kinto's OpenID plugin: its login endpoint sends the browser to the provider, which sends
// it back here with ``#token=<base64 of the provider's token response>``.
function openidButtons(providers) {
  const callback = location.href.split("#")[0] + "#token=";
  const buttons = providers.map((provider) => {
    const button = element("button", `Sign in with ${provider.name}`, "openid");
    button.type = "button";
    button.addEventListener("click", () => {
      sessionStorage.setItem(`${AUTH}-header-type`, provider.header_type || "Bearer");
      const query = new URLSearchParams({ callback, scope: OPENID_SCOPE });
      location.assign(`${API}${provider.auth_path}?${query}`);
    });
    return button;
  });
  $("openid").append(...buttons);
  $("openid").hidden = buttons.length === 0;
}

async function offered() {
  try {
    const { body } = await call("/");
    const openid = body.capabilities && body.capabilities.openid;
    const providers = (openid && Array.isArray(openid.providers) && openid.providers) || [];
    openidButtons(providers.filter((p) => p && typeof p.auth_path === "string"));
  } catch (error) {
    // The sign-in form stays: Basic auth and Kinto accounts need nothing from the server.
  }
}

async function openidReturn(hash) {
  history.replaceState(null, "", location.href.split("#")[0]);
  let token;
  try {
    token = JSON.parse(atob(decodeURIComponent(hash.slice("#token=".length))));
  } catch (e) {
    token = null;
  }
  if (!token || typeof token.access_token !== "string") {
    const why = (token && token.error) || "the provider gave no access token";
    say(`Could not sign in: ${why}.`, "error");
    return show(false);
  }
  const type = sessionStorage.getItem(`${AUTH}-header-type`) || "Bearer";
  await signIn(`${type} ${token.access_token}`);
}

$("signout").addEventListener("click", (event) => {
  event.preventDefault();
  sessionStorage.removeItem(AUTH);
  sessionStorage.removeItem(USER);
  say("Signed out.", "info");
  show(false);
});

$("refresh").addEventListener("click", render);
$("more").addEventListener("click", () => load(true));
window.addEventListener("hashchange", () => sessionStorage.getItem(AUTH) && render());

offered();
if (location.hash.startsWith("#token=")) openidReturn(location.hash);
else show(Boolean(sessionStorage.getItem(AUTH)));
