// Executions view (#/executions): the execution records the user may read, a Start form for
// the state machines the server allows, Stop for the records the user may write.
// Uses dashboard.js's helpers ($, call, element, say); record text only ever reaches the
// page through textContent.
"use strict";

(() => {
  const X_STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"];
  const X_ARN = /^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:([A-Za-z0-9_.-]+)$/;
  let where = null; // {collection, patterns}: from the server's stepfunction capability

  const statusOf = (record) =>
    X_STATUSES.includes(record.status) ? record.status : "INVALID";
  const machineName = (arn) => {
    const match = typeof arn === "string" && X_ARN.exec(arn);
    return match ? match[1] : "invalid";
  };
  const date = (value) => {
    if (value === undefined || value === null) return "—";
    const parsed = typeof value === "string" ? new Date(value) : null;
    return parsed && !Number.isNaN(parsed.getTime()) ? parsed.toLocaleString() : "invalid";
  };
  const text = (value) => (typeof value === "string" ? value : value == null ? "—" : "invalid");

  async function capability() {
    if (where) return where;
    const { body } = await call("/");
    const cap = (body.capabilities && body.capabilities.stepfunction) || {};
    const patterns = Array.isArray(cap.state_machines) ? cap.state_machines : [];
    where = {
      collection: typeof cap.executions === "string" ? cap.executions : null,
      patterns: patterns.filter((p) => typeof p === "string"),
    };
    return where;
  }

  // Whether the user may write a record: an explicit writer sees its permissions (Kinto
  // shows them to writers only); a writer of the collection or bucket may write them all.
  async function writes(url) {
    try {
      const { body } = await call(url);
      return Object.keys(body.permissions || {}).length > 0;
    } catch (error) {
      return false;
    }
  }

  async function records(collection) {
    const found = [];
    let url = `${collection}/records?_sort=-last_modified`;
    while (url) {
      const { body, response } = await call(url);
      found.push(...body.data);
      url = response.headers.get("Next-Page");
    }
    return found;
  }

  function stopButton(record, cell) {
    const button = element("button", "Stop", "stop");
    button.addEventListener("click", async () => {
      button.disabled = true;
      say(`Stopping “${record.id}”…`, "info");
      try {
        const url = `${where.collection}/records/${encodeURIComponent(record.id)}/stepfunction/stop`;
        const { body } = await call(url, { method: "POST", body: "{}" });
        say(`“${record.id}” is ${statusOf(body.data)}.`, "ok");
      } catch (error) {
        say(`“${record.id}” was not stopped: ${error.message}`, "error");
      }
      await render();
    });
    cell.append(button);
  }

  function row(record, mayStop) {
    const tr = element("tr");
    tr.dataset.id = record.id;
    const status = statusOf(record);
    const badge = element("td", null, "status");
    badge.append(element("span", status, status.toLowerCase()));
    const machine = element("td", machineName(record.stateMachineArn), "machine");
    machine.title = text(record.stateMachineArn);
    const actions = element("td", null, "actions");
    if (status === "RUNNING" && mayStop) stopButton(record, actions);
    tr.append(element("td", String(record.id), "name"), machine, badge);
    tr.append(element("td", date(record.startDate), "started"));
    tr.append(element("td", date(record.stopDate), "stopped"));
    tr.append(element("td", text(record.startedBy), "by"), actions);
    return tr;
  }

  function startForm() {
    const exact = where.patterns.filter((p) => !p.includes("*"));
    $("x-machines").replaceChildren(
      ...exact.map((arn) => {
        const option = element("option");
        option.value = arn;
        return option;
      }),
    );
    $("x-allowed").textContent = where.patterns.join(", ");
    const form = $("x-start");
    if (exact.length === 1 && !form.machine.value) form.machine.value = exact[0];
    form.hidden = where.patterns.length === 0;
    $("x-off").hidden = where.patterns.length > 0;
  }

  async function start(event) {
    event.preventDefault();
    const form = event.target;
    let input;
    try {
      input = JSON.parse(form.input.value || "{}");
    } catch (error) {
      input = null;
    }
    if (!input || typeof input !== "object" || Array.isArray(input)) {
      return say("The input must be a JSON object.", "error");
    }
    const data = { stateMachineArn: form.machine.value.trim(), input };
    say("Starting…", "info");
    try {
      const url = `${where.collection}/records`;
      const { body } = await call(url, { method: "POST", body: JSON.stringify({ data }) });
      say(`Started “${body.data.id}”: ${statusOf(body.data)}.`, "ok");
    } catch (error) {
      say(`Nothing was started: ${error.message}`, "error");
    }
    await render();
  }

  // The view's markup is a template of index.html until first shown.
  function mount() {
    if ($("executions")) return;
    const template = $("executions-view");
    template.replaceWith(template.content.cloneNode(true));
    $("x-start").addEventListener("submit", start);
    $("x-refresh").addEventListener("click", render);
  }

  async function render() {
    mount();
    $("steps").hidden = $("detail").hidden = true; // (dashboard.js's render may have run first)
    ["tab-inbox", "tab-all"].forEach((id) => $(id).classList.remove("current"));
    $("executions").hidden = false;
    $("tab-executions").classList.add("current");
    let listed;
    let mayWriteAll = false;
    try {
      await capability();
      if (!where.collection) throw new Error("this server has no executions collection");
      $("x-where").textContent = where.collection.replace(/^\/buckets\/|collections\//g, "");
      startForm();
      listed = await records(where.collection);
      const bucketUrl = where.collection.split("/collections/")[0];
      mayWriteAll = (await writes(where.collection)) || (await writes(bucketUrl));
    } catch (error) {
      if (location.hash !== "#/executions") return;
      const why = { 401: "You are not signed in.", 403: "You may not read the executions." };
      $("x-problem").textContent = why[error.status] || `Not loaded: ${error.message}`;
      $("x-problem").hidden = false;
      $("x-table").hidden = $("x-empty").hidden = true;
      return;
    }
    const running = listed.filter((r) => statusOf(r) === "RUNNING").slice(0, 50);
    const stoppable = new Set();
    if (!mayWriteAll) {
      for (const record of running) {
        if (await writes(`${where.collection}/records/${encodeURIComponent(record.id)}`)) {
          stoppable.add(record.id);
        }
      }
    }
    if (location.hash !== "#/executions") return; // the user went elsewhere meanwhile
    $("x-problem").hidden = true;
    const rows = listed.map((r) => row(r, mayWriteAll || stoppable.has(r.id)));
    $("x-table").tBodies[0].replaceChildren(...rows);
    $("x-table").hidden = listed.length === 0;
    $("x-empty").hidden = listed.length > 0;
    $("x-updated").textContent = `updated at ${new Date().toLocaleTimeString()}`;
  }

  window.dashboardViews = { ...(window.dashboardViews || {}), "#/executions": render };
  $("signout").addEventListener("click", () => $("executions") && ($("executions").hidden = true));
  // dashboard.js rendered the page before this file ran: render this view if it is shown.
  if (location.hash === "#/executions" && sessionStorage.getItem(AUTH)) render();
})();
