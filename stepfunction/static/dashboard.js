// Manual StepFunction Dashboard: the steps waiting for the signed-in user (the inbox), all the
// steps of a collection, one step in detail; answers them after a confirmation.
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
const STEPS = `${COLLECTION}/stepfunction/steps`;
const HISTORY = `/buckets/${encodeURIComponent(bucket)}/history`;
const AUTH = "stepfunction-dashboard-auth"; // the Authorization header's value
const USER = "stepfunction-dashboard-user";
const APP = "Manual StepFunction Dashboard";
const PAGE_SIZE = 50;
const REFRESH_MS = 60 * 1000;
const OPENID_SCOPE = "openid email profile";
let timer = null;
let view = "inbox"; // "inbox", "all" or "step" (more views: see VIEWS)
let shown = []; // the records listed
let about = {}; // what the server tells of each listed record: reviewers, mayAnswer, ...
let nextPage = null; // the list's next page, if any
let answering = false; // a confirmation is open or an answer is on its way

const $ = (id) => document.getElementById(id);
const STATUSES = ["UNANSWERED", "SUCCEED", "FAIL", "TIMED_OUT", "CLOSED"];
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
const json = (value) => {
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

// --- Votes: a quorum of approvals (issue 17) ------------------------------------------------

// The approvals needed (the record's quorum, 1 when absent or invalid).
function quorumOf(record) {
  const q = record.quorum;
  return Number.isInteger(q) && q >= 1 && q <= 20 ? q : 1;
}
const entries = (value) => (Array.isArray(value) ? value : []).filter(
  (e) => e && typeof e === "object" && !Array.isArray(e),
);
// The distinct approvals, the first of each person.
function approvalsOf(record) {
  const seen = new Set();
  return entries(record.votes).filter((v) => {
    if (v.answer !== "SUCCEED" || typeof v.by !== "string" || seen.has(v.by)) return false;
    seen.add(v.by);
    return true;
  });
}
// "2 of 3 approvals", or "" for a step decided by one answer.
function progressText(record) {
  const quorum = quorumOf(record);
  return quorum > 1 ? `${approvalsOf(record).length} of ${quorum} approvals` : "";
}
// A principal as the server names it ("you", a name, an address), never a hash.
const personOf = (info, principal) =>
  (info.names && info.names[principal]) || (principal.includes("@") ? principal : "someone");
const approvedByMe = (record, info) =>
  approvalsOf(record).some((v) => info.names && info.names[v.by] === "you");

// --- Words: statuses, dates, deadlines --------------------------------------------------------

// A status in words, for this user: [text, class].
function statusWords(record, info) {
  const status = statusOf(record);
  if (status === "UNANSWERED") {
    if (info && info.mayAnswer && approvedByMe(record, info)) {
      return ["Approved by you, waiting for others", "waiting"];
    }
    if (info && info.mayAnswer) return ["Waiting for you", "waiting"];
    if (info && info.problem) return ["Can't be answered yet", "blocked"];
    return ["Waiting for a reviewer", "waiting"];
  }
  return {
    SUCCEED: ["Approved", "approved"],
    FAIL: ["Rejected", "rejected"],
    TIMED_OUT: ["Timed out", "closed"],
    INVALID: ["Invalid status", "invalid"],
  }[status];
}

// One date format everywhere: the reader's own, medium date and short time.
const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const when = (value) => DATE.format(new Date(value));

// A deadline (RFC 3339 or epoch seconds) as a Date, or null.
function deadlineOf(record) {
  const value = record.deadline;
  let date = null;
  if (typeof value === "number") date = new Date(value * 1000);
  else if (typeof value === "string" && value.trim()) date = new Date(value.trim());
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

function span(ms) {
  const minutes = Math.round(Math.abs(ms) / 60000);
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} h`;
  return `${Math.round(hours / 24)} d`;
}

// "due in 3 h" / "overdue by 2 d" / "" (no deadline), and whether it is overdue.
function dueWords(record) {
  const date = deadlineOf(record);
  if (!date) return { text: record.deadline === undefined ? "" : "invalid deadline" };
  const left = date.getTime() - Date.now();
  const text = left >= 0 ? `due in ${span(left)}` : `overdue by ${span(left)}`;
  return { text, title: `Due ${when(date)}`, overdue: left < 0 };
}

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
    404: `${bucket}/${collection} holds no manual steps.`,
  }[error.status];
  return why || `The steps could not be loaded: ${error.message}`;
}

// A page of the inbox or of all the steps (the next one, with ``more``): the server searches,
// sorts and pages.
async function listPage(more) {
  const query = new URLSearchParams({ _limit: PAGE_SIZE, _sort: $("sort").value });
  if ($("q").value.trim()) query.set("q", $("q").value.trim());
  const url = more ? nextPage : `${view === "inbox" ? INBOX : STEPS}?${query}`;
  const { body, response } = await call(url);
  return { body, next: response.headers.get("Next-Page") };
}

function emptyText() {
  const search = $("q").value.trim();
  if (search) return `No steps match “${search}”.`;
  return view === "inbox" ? "No steps waiting for you." : "No steps you may see here yet.";
}

let loads = 0; // lists asked for so far: only the latest one's answer is shown

async function load(more = false) {
  const listed = view;
  const ticket = ++loads;
  let page;
  try {
    const answer = await listPage(more);
    if (ticket !== loads) return; // a later list (another sort, a search) is on its way
    page = answer.body;
    nextPage = answer.next;
  } catch (error) {
    if (view !== listed || ticket !== loads) return;
    $("problem").textContent = problem(error);
    $("problem").hidden = false;
    $("table").hidden = $("empty").hidden = $("more").hidden = true;
    $("count").textContent = "";
    return;
  }
  if (view !== listed) return; // the user went elsewhere meanwhile
  shown = more ? shown.concat(page.data) : page.data;
  about = more ? { ...about, ...page.steps } : page.steps;
  $("problem").hidden = true;
  $("table").tBodies[0].replaceChildren(...shown.map(row));
  $("table").hidden = shown.length === 0;
  $("empty").textContent = emptyText();
  $("empty").hidden = shown.length > 0;
  $("more").hidden = !nextPage;
  $("count").textContent = `· ${page.total} ${page.total === 1 ? "step" : "steps"}`;
  $("updated").textContent = `· updated ${when(Date.now())}`;
}

function cell(label, className) {
  const td = element("td", null, className);
  td.dataset.label = label; // the card layout's label, on narrow screens
  return td;
}

function row(record) {
  const info = about[record.id] || {};
  const tr = element("tr");
  tr.dataset.id = record.id;
  const subject = cell("Subject", "subject");
  const link = element("a", nameOf(record));
  link.href = stepLink(record);
  subject.append(link);
  const due = cell("Due", "due");
  if (statusOf(record) === "UNANSWERED") {
    const words = dueWords(record);
    due.textContent = words.text || "no deadline";
    if (words.title) due.title = words.title;
    due.classList.toggle("overdue", Boolean(words.overdue));
  }
  const reviewer = cell("Reviewer", "reviewer");
  reviewer.textContent = (info.reviewers || []).join(", ") || textOf(record.reviewer);
  const badge = cell("Status", "status");
  badge.append(statusBadge(record, info));
  if (info.answeredBy) badge.append(" ", element("span", `by ${info.answeredBy}`, "by"));
  if (statusOf(record) === "UNANSWERED" && progressText(record)) {
    badge.append(" ", element("span", progressText(record), "progress"));
  }
  tr.append(subject, due, reviewer, badge, actions(record, info, cell("Actions", "actions")));
  return tr;
}

function statusBadge(record, info) {
  const [text, kind] = statusWords(record, info);
  const badge = element("span", text, kind);
  if (info.answeredBy) badge.title = `by ${info.answeredBy}`;
  return badge;
}

// Accept and Reject, for those who may answer: each asks for a confirmation first.
function actions(record, info, container, reasonInput) {
  if (!info.mayAnswer || statusOf(record) !== "UNANSWERED") {
    if (info.problem) container.append(element("span", info.problem, "why"));
    return container;
  }
  const accept = element("button", "Accept", "accept");
  const reject = element("button", "Reject…", "reject");
  accept.type = reject.type = "button";
  accept.setAttribute("aria-label", `Accept ${nameOf(record)}`);
  reject.setAttribute("aria-label", `Reject ${nameOf(record)}`);
  accept.addEventListener("click", () => confirmAnswer(record, "SUCCEED", accept));
  reject.addEventListener("click", () =>
    confirmAnswer(record, "FAIL", reject, reasonInput ? reasonInput.value : ""),
  );
  container.append(accept, reject);
  return container;
}

// --- The confirmation -------------------------------------------------------------------------

// Opens the confirmation of that answer; nothing is sent until it is confirmed. Escape or
// Cancel closes it and gives the focus back to ``opener``.
function confirmAnswer(record, answer, opener, reason = "") {
  const dialog = $("confirm");
  const name = nameOf(record);
  const rejecting = answer === "FAIL";
  $("confirm-title").textContent = rejecting ? `Reject “${name}”?` : `Accept “${name}”?`;
  $("confirm-text").textContent = rejecting
    ? "The workflow is told the step is rejected, with your reason. This can't be undone."
    : "The workflow is told the step is accepted and goes on. This can't be undone.";
  $("confirm-reason-label").hidden = !rejecting;
  $("confirm-reason").value = reason;
  $("confirm-comment").value = "";
  $("confirm-ok").textContent = rejecting ? "Reject" : "Accept";
  $("confirm-ok").className = rejecting ? "reject" : "accept";
  dialog.pending = { record, answer, opener };
  answering = true;
  dialog.showModal();
  (rejecting ? $("confirm-reason") : $("confirm-cancel")).focus();
}

function closeConfirmation() {
  const dialog = $("confirm");
  const { opener } = dialog.pending || {};
  dialog.pending = null;
  if (dialog.open) dialog.close();
  answering = false;
  if (opener && opener.isConnected) opener.focus();
}

$("confirm-cancel").addEventListener("click", closeConfirmation);
$("confirm").addEventListener("cancel", (event) => {
  event.preventDefault(); // Escape: closed here, the focus given back
  closeConfirmation();
});
// The focus stays in a dialog: Tab from its last control goes to its first, and back.
function trapFocus(event) {
  if (event.key !== "Tab") return;
  const controls = [...event.currentTarget.querySelectorAll("input, textarea, button")].filter(
    (c) => c.offsetParent !== null,
  );
  const first = controls[0];
  const last = controls[controls.length - 1];
  if (event.shiftKey && document.activeElement === first) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && document.activeElement === last) {
    event.preventDefault();
    first.focus();
  }
}
$("confirm").addEventListener("keydown", trapFocus);
$("delegate").addEventListener("keydown", trapFocus);
$("confirm-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const { record, answer } = $("confirm").pending || {};
  if (!record) return;
  const cause = $("confirm-reason").value.trim();
  const comment = $("confirm-comment").value.trim();
  $("confirm").pending = null;
  $("confirm").close();
  const body = answer === "FAIL" && cause ? { answer, cause } : { answer };
  send(record, comment ? { ...body, comment } : body);
});

async function send(record, body) {
  const name = nameOf(record);
  document
    .querySelectorAll(`[data-id="${CSS.escape(record.id)}"] button, #d-actions button`)
    .forEach((control) => (control.disabled = true));
  const fetching = record.activityArn && record.taskToken === undefined;
  const verb = body.answer === "FAIL" ? "Rejecting" : "Accepting";
  say(
    fetching
      ? `${verb} “${name}”: asking Step Functions for its task (up to a minute when no workflow is waiting)…`
      : `${verb} “${name}”…`,
    "info",
  );
  try {
    const url = `${RECORDS}/${encodeURIComponent(record.id)}/stepfunction`;
    const { body: result, response } = await call(url, {
      method: "POST",
      body: JSON.stringify(body),
    });
    const rejected = statusOf(result.data) === "FAIL";
    if (statusOf(result.data) === "UNANSWERED" && progressText(result.data)) {
      // 202 (or 200 when already counted): recorded, more approvals needed.
      const again = response.status === 200 ? "was already" : "was";
      say(`Your approval ${again} recorded: ${progressText(result.data)} so far.`, "ok");
    } else {
      say(`${rejected ? "Rejected" : "Accepted"} “${name}”.`, rejected ? "info" : "ok");
    }
  } catch (error) {
    say(`“${name}” was not answered: ${error.message}`, "error");
  }
  answering = false;
  await render(false);
  $("message").focus();
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

// A row of the detail's list, only when there is something to say.
function field(list, label, ...content) {
  if (!content.length || content.every((c) => c === "" || c === null || c === undefined)) return;
  const dd = element("dd");
  dd.dataset.field = label;
  dd.append(...content.filter((c) => c !== null && c !== undefined));
  list.append(element("dt", label), dd);
}

function arnContent(value, kind) {
  if (value === undefined) return null;
  const name = arnName(value, kind);
  if (!name) return "invalid";
  const node = element("span");
  node.append(element("strong", name.split(":").pop()), " ", element("code", value, "arn"));
  return node;
}

async function loadStep(id) {
  let record;
  let info = {};
  try {
    ({ body: { data: record } } = await call(`${RECORDS}/${encodeURIComponent(id)}`));
    const { body } = await call(`${STEPS}?id=${encodeURIComponent(id)}`);
    info = body.steps[id] || {};
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
  document.title = `${nameOf(record)} – ${APP}`;
  $("detail-problem").hidden = true;
  $("d-subject").textContent = nameOf(record);
  $("d-status").replaceChildren(statusBadge(record, info));
  $("d-why").textContent = info.problem || "";
  $("d-why").hidden = !info.problem;

  const list = $("d-fields");
  list.replaceChildren();
  const pending = statusOf(record) === "UNANSWERED";
  const due = dueWords(record);
  if (pending && due.text) field(list, "Due", `${due.text} (${due.title.slice(4)})`);
  field(list, "Reviewers", (info.reviewers || []).join(", ") || textOf(record.reviewer));
  decisionFields(list, record, info);
  const given = record.answer;
  const audit = given && typeof given === "object" && !Array.isArray(given) ? given : null;
  if (given !== undefined && !audit) field(list, "Answer", "invalid");
  if (audit) {
    const by = audit.source === "history" ? "someone outside this dashboard" : info.answeredBy;
    field(list, "Answered by", by || "invalid");
    if (typeof audit.at === "string") field(list, "Answered", when(audit.at));
    if (typeof audit.error === "string") field(list, "Error", audit.error);
    if (typeof audit.cause === "string") field(list, "Reason", audit.cause);
    if (audit.output !== undefined) field(list, "Output", element("pre", json(audit.output)));
  }
  field(list, "Created", created ? when(created) : null);
  if (!created) field(list, "Last changed", when(record.last_modified));
  let machine = arnContent(record.stateMachineArn, "stateMachine");
  if (record.stateMachineArn === undefined && arnName(record.executionArn, "execution")) {
    machine = arnName(record.executionArn, "execution").split(":")[0];
  }
  field(list, "State machine", machine);
  field(list, "Execution", arnContent(record.executionArn, "execution"));
  $("d-input").textContent = record.input === undefined ? "" : json(record.input);
  $("d-raw").hidden = record.input === undefined;

  $("d-actions").replaceChildren();
  if (info.mayAnswer && pending) {
    const reason = element("input", null, "reason");
    reason.setAttribute("aria-label", `Reason for rejecting ${nameOf(record)}`);
    reason.placeholder = "Reason to reject (optional)";
    // Enter in the reason opens the rejection's confirmation.
    reason.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      confirmAnswer(record, "FAIL", reason, reason.value);
    });
    actions(record, info, $("d-actions"), reason);
    $("d-actions").append(reason);
    if (record.delegation === true) $("d-actions").append(delegateButton(record));
  }
  $("step").hidden = false;
}

// The votes, delegations and escalation of a step, in the detail's list.
function decisionFields(list, record, info) {
  if (quorumOf(record) > 1) field(list, "Approvals", progressText(record));
  const votes = entries(record.votes).filter((v) => typeof v.by === "string");
  if (votes.length) {
    const items = votes.map((v) => {
      const verb = { SUCCEED: "approved", FAIL: "rejected" }[v.answer] || "answered";
      const item = element("li", `${personOf(info, v.by)} ${verb}`);
      if (typeof v.at === "string") item.append(` on ${when(v.at)}`);
      if (typeof v.comment === "string" && v.comment) {
        item.append(": ", element("q", v.comment, "comment"));
      }
      return item;
    });
    const ul = element("ul", null, "votes");
    ul.append(...items);
    field(list, "Votes", ul);
  }
  const handed = entries(record.delegations).filter((d) => typeof d.to === "string");
  if (handed.length) {
    const ul = element("ul", null, "votes");
    for (const d of handed) {
      const from = typeof d.from === "string" ? personOf(info, d.from) : "someone";
      const item = element("li", `${from} delegated to ${personOf(info, d.to)}`);
      if (typeof d.at === "string") item.append(` on ${when(d.at)}`);
      if (typeof d.comment === "string" && d.comment) {
        item.append(": ", element("q", d.comment, "comment"));
      }
      ul.append(item);
    }
    field(list, "Delegated", ul);
  }
  const up = record.escalated;
  if (up && typeof up === "object" && !Array.isArray(up)) {
    const people = (Array.isArray(up.to) ? up.to : [up.to]).filter((p) => typeof p === "string");
    const to = people.map((p) => personOf(info, p)).join(", ") || "its escalation contacts";
    const at = typeof up.at === "string" || typeof up.at === "number" ? up.at : null;
    const date = at === null ? null : new Date(typeof at === "number" ? at * 1000 : at);
    const whenText = date && !Number.isNaN(date.getTime()) ? ` at ${when(date)}` : "";
    field(list, "Escalated", `Escalated to ${to}${whenText}`);
  }
}

// --- Delegating -------------------------------------------------------------------------------

function delegateButton(record) {
  const button = element("button", "Delegate…", "delegate");
  button.type = "button";
  button.setAttribute("aria-label", `Delegate ${nameOf(record)}`);
  button.addEventListener("click", () => {
    const dialog = $("delegate");
    $("delegate-title").textContent = `Delegate “${nameOf(record)}”`;
    $("delegate-to").value = $("delegate-comment").value = "";
    $("delegate-problem").hidden = true;
    $("delegate-ok").disabled = false;
    dialog.pending = { record, opener: button };
    answering = true;
    dialog.showModal();
    $("delegate-to").focus();
  });
  return button;
}

function closeDelegation() {
  const dialog = $("delegate");
  const { opener } = dialog.pending || {};
  dialog.pending = null;
  if (dialog.open) dialog.close();
  answering = false;
  if (opener && opener.isConnected) opener.focus();
}

$("delegate-cancel").addEventListener("click", closeDelegation);
$("delegate").addEventListener("cancel", (event) => {
  event.preventDefault();
  closeDelegation();
});
$("delegate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const { record } = $("delegate").pending || {};
  if (!record) return;
  const to = $("delegate-to").value.trim();
  const comment = $("delegate-comment").value.trim();
  $("delegate-ok").disabled = true;
  try {
    const url = `${RECORDS}/${encodeURIComponent(record.id)}/stepfunction/delegate`;
    await call(url, { method: "POST", body: JSON.stringify(comment ? { to, comment } : { to }) });
  } catch (error) {
    // Said in the dialog, which stays open: the address can be corrected.
    const why = { 403: "Not allowed", 400: "Not valid", 409: "Too late" }[error.status];
    $("delegate-problem").textContent = `${why || "Not delegated"}: ${error.message}`;
    $("delegate-problem").hidden = false;
    $("delegate-ok").disabled = false;
    return;
  }
  $("delegate").pending = null;
  $("delegate").close();
  answering = false;
  say(`Delegated “${nameOf(record)}” to ${to}.`, "ok");
  await render(false);
  $("message").focus();
});

// --- Views ------------------------------------------------------------------------------------

// Each view: its tab (if any), its main heading and the page title. Another view adds an
// entry here, a tab in nav#views and a section; ``render`` shows it.
const VIEWS = {
  inbox: { tab: "tab-inbox", heading: "Waiting for you", section: "steps" },
  all: { tab: "tab-all", heading: "All steps", section: "steps" },
  step: { heading: "Step", section: "detail" },
};

// For the scripts of other views (e.g. executions.js): add to VIEWS, then render().
window.stepfunctionDashboard = { VIEWS, render, call, element, when, say, $ };

function viewOf(hash) {
  if (/^#\/steps\/(.+)$/.test(hash)) return "step";
  const name = hash.replace(/^#\//, "");
  return VIEWS[name] && name !== "step" ? name : "inbox";
}

// Shows the view of the address; ``focus``: the focus moves to its main heading.
function render(focus = true) {
  // Views of their own files (executions.js) register under their hash.
  document.querySelectorAll("[data-view]").forEach((node) => {
    if (node.tagName === "A") node.classList.remove("current");
    else node.hidden = true;
  });
  const other = (window.dashboardViews || {})[location.hash];
  if (other) {
    view = location.hash;
    for (const known of Object.values(VIEWS)) {
      if (known.tab) {
        $(known.tab).classList.remove("current");
        $(known.tab).removeAttribute("aria-current");
      }
      $(known.section).hidden = true;
    }
    return other();
  }
  const step = /^#\/steps\/(.+)$/.exec(location.hash);
  view = viewOf(location.hash);
  const current = VIEWS[view];
  for (const [name, other] of Object.entries(VIEWS)) {
    if (other.tab) {
      $(other.tab).classList.toggle("current", name === view);
      if (name === view) $(other.tab).setAttribute("aria-current", "page");
      else $(other.tab).removeAttribute("aria-current");
    }
  }
  for (const section of new Set(Object.values(VIEWS).map((v) => v.section))) {
    $(section).hidden = section !== current.section;
  }
  document.title = `${current.heading} – ${APP}`;
  if (current.load) return current.load(focus);
  if (step) {
    if (focus) $("d-subject").textContent = "";
    const loaded = loadStep(decodeURIComponent(step[1]));
    return focus ? loaded.then(() => $("d-subject").focus()) : loaded;
  }
  $("steps-heading").textContent = current.heading;
  $("what").textContent = "In";
  $("back").href = `#/${view}`;
  if (focus) $("steps-heading").focus();
  return load();
}

// The periodic refresh leaves alone a reason being typed or an answer being confirmed.
function refresh() {
  const reasons = [...document.querySelectorAll(".reason:not(:disabled)")];
  if (answering || reasons.some((input) => input.value || input === document.activeElement)) {
    return;
  }
  render(false);
}

function show(signedIn) {
  $("signin").hidden = signedIn;
  $("views").hidden = $("account").hidden = !signedIn;
  clearInterval(timer);
  if (!signedIn) {
    $("steps").hidden = $("detail").hidden = true;
    document.title = `Sign in – ${APP}`;
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
    const profile = body.user.profile || {};
    const named = [profile.name, profile.email].find((v) => typeof v === "string" && v);
    sessionStorage.setItem(USER, name || named || body.user.id);
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
  $("signin-heading").focus();
});

$("refresh").addEventListener("click", () => render(false));
$("more").addEventListener("click", () => load(true));
$("filter").addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});
$("sort").addEventListener("change", () => load());
window.addEventListener("hashchange", () => sessionStorage.getItem(AUTH) && render());

offered();
if (location.hash.startsWith("#token=")) openidReturn(location.hash);
else show(Boolean(sessionStorage.getItem(AUTH)));
