// HeroAgent page: snapshots from the JSON API, then live updates from /events.
// Every value from the server goes into the DOM through textContent, never as HTML.
"use strict";

const TOKEN_KEY = "heroagent.token";
const MAX_ROWS = 50;
const $ = (id) => document.getElementById(id);

// -- requests ------------------------------------------------------------------------
// The token lives in sessionStorage (given through the login form, never in a URL).
function authHeaders(extra = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

class Unauthorized extends Error {}

async function call(method, path, body) {
  const init = { method, headers: authHeaders(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 401) {
    askLogin();
    throw new Unauthorized("login required");
  }
  const data = res.status === 204 ? null : await res.json();
  return { status: res.status, ok: res.ok, data };
}

// -- small DOM helpers ----------------------------------------------------------------
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function when(ts) {
  return ts ? new Date(ts * 1000).toLocaleTimeString() : "";
}

function cells(row, values) {
  row.replaceChildren(...values.map((v) => (v instanceof Node ? wrapCell(v) : el("td", v))));
}

function wrapCell(node) {
  const td = document.createElement("td");
  td.append(node);
  return td;
}

// -- services ---------------------------------------------------------------------------
function renderServices(list) {
  const body = $("services").tBodies[0];
  body.replaceChildren(...list.map(serviceRow));
}

function serviceRow(s) {
  const tr = document.createElement("tr");
  tr.dataset.service = s.name;
  cells(tr, [s.name, el("span", s.state, `state-${s.state}`), s.address, s.last_error || s.detail]);
  return tr;
}

function serviceChanged(e) {
  const body = $("services").tBodies[0];
  const old = body.querySelector(`tr[data-service="${CSS.escape(e.service)}"]`);
  const row = serviceRow({ name: e.service, state: e.state, address: e.address, last_error: e.error, detail: "" });
  if (old) old.replaceWith(row);
  else body.append(row);
}

// -- queues -------------------------------------------------------------------------------
let queueTimer = null;
function refreshQueuesSoon() {
  // Events can come by the thousand; one queue snapshot per half second is plenty.
  if (queueTimer) return;
  queueTimer = setTimeout(async () => {
    queueTimer = null;
    await loadQueues().catch(() => {});
  }, 500);
}

// Replaces a table's rows with one for each item of a list the API gives.
async function loadTable(tableId, path, row) {
  const { ok, data } = await call("GET", path);
  if (ok) $(tableId).tBodies[0].replaceChildren(...data.map(row));
}

async function loadQueues() {
  await loadTable("queues", "/api/queues", (q) => {
    const tr = document.createElement("tr");
    const name = `${q.circle}/${q.topic}${q.paused ? " (paused)" : ""}`;
    cells(tr, [name, q.waiting, q.active, q.done, q.error, (q.rate_per_second * 60).toFixed(1)]);
    [...tr.cells].slice(1).forEach((c) => c.classList.add("num"));
    return tr;
  });
}

// -- workers ------------------------------------------------------------------------------
// No event says a worker was lost (its heartbeat just stops), so the table is polled.
const WORKERS_POLL_MS = 2000;

async function loadWorkers() {
  await loadTable("workers", "/api/workers", (w) => {
    const tr = document.createElement("tr");
    tr.dataset.worker = w.worker;
    if (w.state === "lost") tr.className = "worker-lost";
    const age = w.last_heartbeat ? `${w.heartbeat_age.toFixed(1)} s ago` : "";
    cells(tr, [w.worker, el("span", w.state, `worker-${w.state}`), w.host, w.slots, w.busy, w.running, age]);
    [...tr.cells].slice(3, 6).forEach((c) => c.classList.add("num"));
    return tr;
  });
}

// -- jobs -------------------------------------------------------------------------------
let oldestShown = null;

function jobsFilter() {
  const params = new URLSearchParams({ limit: String(MAX_ROWS) });
  if ($("jobs-status").value) params.set("status", $("jobs-status").value);
  if ($("jobs-text").value.trim()) params.set("text", $("jobs-text").value.trim());
  return params;
}

async function loadJobs(append = false) {
  const params = jobsFilter();
  if (append && oldestShown) params.set("before_id", String(oldestShown));
  const { ok, data } = await call("GET", `/api/jobs?${params}`);
  if (!ok) return;
  const rows = data.jobs.map((job) => jobRow(withStreamed(job)));
  const body = $("jobs-table").tBodies[0];
  if (append) body.append(...rows);
  else {
    body.replaceChildren(...rows);
    // Jobs the stream announced after the history was read are not in the list.
    [...streamed.values()].sort((a, b) => a.job_id - b.job_id).forEach(showJob);
  }
  oldestShown = data.next_before_id;
  $("jobs-more").hidden = data.next_before_id === null;
}

// The newest state the event stream gave for each job. The history behind /api/jobs is
// written a moment after the event is sent, so a list read meanwhile can be older than the
// stream: the stream's state wins.
const streamed = new Map();
const MAX_JOBS_KEPT = 1000;

// Keeps `e` as its job's newest in `byJob`. A job whose end was never seen must not stay
// forever: past MAX_JOBS_KEPT jobs the one least recently heard of goes.
function keepNewest(byJob, e) {
  byJob.delete(e.job_id);
  byJob.set(e.job_id, e);
  if (byJob.size > MAX_JOBS_KEPT) byJob.delete(byJob.keys().next().value);
}

function withStreamed(job) {
  const e = streamed.get(job.job_id);
  if (!e) return job;
  const p = e.status === "active" ? progressOf.get(job.job_id) : undefined;
  return { ...job, status: e.status, error: e.error, progress: p?.fraction ?? job.progress, progress_message: p?.message ?? job.progress_message };
}

function jobRow(job) {
  const tr = document.createElement("tr");
  tr.dataset.job = String(job.job_id);
  const open = el("button", job.job_id, "link");
  open.type = "button";
  open.setAttribute("aria-label", `Open job ${job.job_id}`);
  open.addEventListener("click", () => openJob(job.job_id));
  cells(tr, [open, `${job.circle}/${job.topic}`, statusCell(job.status, job.progress, job.progress_message), when(job.time_scheduled), job.error]);
  return tr;
}

// -- progress -----------------------------------------------------------------------------
// A running job that reports progress shows a bar beside its status; the bar goes with the
// status cell when the job ends.
function progressBar(fraction, message) {
  const bar = el("progress", null, "job-progress");
  bar.max = 1;
  bar.value = fraction;
  const percent = `${Math.round(fraction * 100)}%`;
  bar.title = message ? `${percent} ${message}` : percent;
  bar.setAttribute("aria-label", bar.title);
  return bar;
}

function statusCell(status, fraction, message) {
  const span = el("span", status, `status-${status}`);
  if (status !== "active" || fraction === null || fraction === undefined) return span;
  const cell = document.createElement("span");
  cell.append(span, " ", progressBar(fraction, message));
  return cell;
}

// The newest progress of running jobs, since a job's `active` may come after it.
const progressOf = new Map();

function jobProgress(e) {
  keepNewest(progressOf, e);
  const row = $("jobs-table").tBodies[0].querySelector(`tr[data-job="${e.job_id}"]`);
  const status = row?.cells[2].querySelector("[class^=status-]")?.textContent;
  if (row && status === "active") row.cells[2].replaceChildren(statusCell(status, e.fraction, e.message));
  if (openJobId === e.job_id) $("job-progress-value").replaceChildren(progressText(e.fraction, e.message));
}

function progressText(fraction, message) {
  if (fraction === null || fraction === undefined) return "";
  const text = `${Math.round(fraction * 100)}%${message ? ` ${message}` : ""}`;
  const wrap = document.createElement("span");
  wrap.append(progressBar(fraction, message), " ", el("span", text));
  return wrap;
}

function newestShown(body) {
  return body.rows.length ? Number(body.rows[0].dataset.job) || 0 : 0;
}

function jobChanged(e) {
  keepNewest(streamed, e);
  showJob(e);
  if (openJobId === e.job_id) openJob(e.job_id, true);
  refreshQueuesSoon();
}

function showJob(e) {
  const body = $("jobs-table").tBodies[0];
  const old = body.querySelector(`tr[data-job="${e.job_id}"]`);
  const wanted = $("jobs-status").value;
  const filtered = (wanted && wanted !== e.status) || $("jobs-text").value.trim();
  if (e.status !== "active") progressOf.delete(e.job_id);
  const p = progressOf.get(e.job_id);
  if (old) {
    old.cells[2].replaceChildren(statusCell(e.status, p?.fraction, p?.message));
    old.cells[4].textContent = e.error || "";
    if (wanted && wanted !== e.status) old.remove();
  } else if (!filtered && e.job_id > newestShown(body)) {
    // Any newer job counts, not only a `new` one: the stream sends each job's latest
    // state, so a quick job may first show up as active or done.
    const row = jobRow({
      job_id: e.job_id, circle: e.circle, topic: e.topic, status: e.status, time_scheduled: e.ts, error: e.error,
      progress: p?.fraction, progress_message: p?.message,
    });
    row.classList.add("fresh");
    body.prepend(row);
    while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  }
}

// -- one job ------------------------------------------------------------------------------
let openJobId = null;

async function openJob(id, refresh = false) {
  const { ok, data } = await call("GET", `/api/jobs/${id}`);
  if (!ok) return;
  openJobId = id;
  const job = data.job;
  $("job-title").textContent = `Job ${job.job_id}`;
  const fields = [
    ["Queue", `${job.circle}/${job.topic}`], ["Status", job.status], ["Type", job.params_type],
    ["Scheduled", when(job.time_scheduled)], ["Started", when(job.time_start)], ["Ended", when(job.time_end)],
    ["Attempts", job.attempts], ["Worker", job.worker], ["Timeout", `${job.timeout} s`], ["Error", job.error],
  ];
  const progress = Object.assign(el("dd"), { id: "job-progress-value" });
  progress.append(progressText(job.progress, job.progress_message));
  $("job-fields").replaceChildren(
    ...fields.flatMap(([k, v]) => [el("dt", k), el("dd", v)]),
    el("dt", "Progress"),
    progress,
  );
  $("job-params").textContent = job.params;
  $("job-result").textContent = job.result;
  $("job-log").textContent = job.log_lines.join("\n");
  $("job-timeline").replaceChildren(
    ...data.history.map((v) => {
      const at = v.time_end || v.time_start || v.time_scheduled;
      const extra = [v.worker && `worker ${v.worker}`, v.error].filter(Boolean).join(" — ");
      return el("li", `${when(at)} ${v.status}${extra ? ` — ${extra}` : ""}`, `status-${v.status}`);
    }),
  );
  const ended = job.status === "done" || job.status === "error";
  $("job-cancel").disabled = ended;
  $("job-requeue").disabled = !ended;
  if (!refresh) {
    $("job-action-result").textContent = "";
    if (!$("job-dialog").open) $("job-dialog").showModal();
  }
}

async function jobAction(what) {
  const { ok, data } = await call("POST", `/api/jobs/${openJobId}/${what}`);
  const out = $("job-action-result");
  out.textContent = ok ? `${what}: now ${data.status}` : data.detail;
  out.className = ok ? "" : "bad";
  if (ok) openJob(openJobId, true);
}

// -- submit ------------------------------------------------------------------------------
function showProblems(problems) {
  $("submit-problems").replaceChildren(...problems.map((p) => el("li", `line ${p.line}, col ${p.col}: ${p.message}`)));
}

let validateTimer = null;
function validateSoon() {
  clearTimeout(validateTimer);
  if ($("submit-type").value !== "heroscript") {
    showProblems([]);
    return;
  }
  validateTimer = setTimeout(async () => {
    const { ok, data } = await call("POST", "/api/validate", { text: $("submit-params").value }).catch(() => ({}));
    if (ok) showProblems(data.problems);
  }, 250);
}

async function submitJob(event) {
  event.preventDefault();
  const out = $("submit-result");
  const body = {
    params: $("submit-params").value,
    topic: $("submit-topic").value.trim(),
    circle: $("submit-circle").value.trim(),
    params_type: $("submit-type").value,
    timeout: Number($("submit-timeout").value) || 60,
  };
  const { ok, status, data } = await call("POST", "/api/jobs", body);
  if (ok) {
    out.textContent = `job ${data.job_id} submitted`;
    out.className = "ok";
    out.dataset.jobId = String(data.job_id);
    showProblems([]);
    return;
  }
  out.className = "bad";
  out.textContent = status === 422 && data.line ? `refused at line ${data.line}, col ${data.col}` : data.detail;
  showProblems(data.problems || []);
  if (data.line) focusLine(data.line, data.col);
}

function focusLine(line, col) {
  const area = $("submit-params");
  const lines = area.value.split("\n");
  const offset = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0) + Math.max(col - 1, 0);
  area.focus();
  area.setSelectionRange(offset, offset);
}

async function loadTemplates() {
  const { ok, data } = await call("GET", "/api/actions");
  if (!ok) return;
  const select = $("submit-template");
  select.replaceChildren(el("option", "—"), ...data.map((a) => Object.assign(el("option", a.method), { value: a.template })));
  select.options[0].value = "";
}

// -- events ------------------------------------------------------------------------------
// fetch() rather than EventSource: EventSource cannot send the Authorization header.
async function listen() {
  for (;;) {
    try {
      const res = await fetch("/events", { headers: authHeaders(), cache: "no-store" });
      if (res.status === 401) {
        askLogin();
        return;
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
      }
    } catch (err) {
      // Network gone or server stopped: retry below.
    }
    setConnection("reconnecting…");
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function dispatch(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length) return;
  const payload = JSON.parse(data.join("\n"));
  if (name === "ready") {
    setConnection("live");
    renderServices(payload.services);
    loadQueues().catch(() => {});
    loadJobs().catch(() => {});
  } else if (name === "job") jobChanged(payload);
  else if (name === "job_progress") jobProgress(payload);
  else if (name === "job_log" && openJobId === payload.job_id) {
    const log = $("job-log");
    log.textContent += (log.textContent ? "\n" : "") + payload.line;
  }
  else if (name === "service") serviceChanged(payload);
}

function setConnection(text) {
  $("connection").textContent = text;
}

// -- login ------------------------------------------------------------------------------
let started = false;
function askLogin() {
  // The event stream stops on a 401; logging in starts everything again.
  started = false;
  if (!$("login-dialog").open) $("login-dialog").showModal();
}

async function login(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("login-token").value);
  const res = await fetch("/api/services", { headers: authHeaders(), cache: "no-store" });
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = "That token is not accepted.";
    return;
  }
  $("login-error").textContent = "";
  $("login-token").value = "";
  $("login-dialog").close();
  start();
}

// -- keyboard ----------------------------------------------------------------------------
function keys(event) {
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && document.activeElement?.form === $("submit-form")) {
    event.preventDefault();
    $("submit-form").requestSubmit();
  } else if (event.key === "/" && !typing && !document.querySelector("dialog[open]")) {
    event.preventDefault();
    $("jobs-text").focus();
  }
}

function start() {
  if (started) return;
  started = true;
  setConnection("connecting…");
  loadTemplates().catch(() => {});
  loadWorkers().catch(() => {});
  setInterval(() => loadWorkers().catch(() => {}), WORKERS_POLL_MS);
  listen();
}

document.addEventListener("DOMContentLoaded", () => {
  $("submit-form").addEventListener("submit", (e) => submitJob(e).catch(() => {}));
  $("submit-params").addEventListener("input", validateSoon);
  $("submit-type").addEventListener("change", validateSoon);
  $("submit-template").addEventListener("change", (e) => {
    if (e.target.value) $("submit-params").value = e.target.value;
    validateSoon();
  });
  $("jobs-status").addEventListener("change", () => loadJobs().catch(() => {}));
  let searchTimer = null;
  $("jobs-text").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadJobs().catch(() => {}), 250);
  });
  $("jobs-more").addEventListener("click", () => loadJobs(true).catch(() => {}));
  $("job-cancel").addEventListener("click", () => jobAction("cancel").catch(() => {}));
  $("job-requeue").addEventListener("click", () => jobAction("requeue").catch(() => {}));
  $("job-dialog").addEventListener("close", () => (openJobId = null));
  $("login-form").addEventListener("submit", (e) => login(e).catch(() => {}));
  document.addEventListener("keydown", keys);
  start();
});
