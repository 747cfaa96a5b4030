// The Wharf dashboard: the login, then apps, routes, certificates, events and logs, live.
// Everything comes from the admin API (api.js): status and traffic polled once a second,
// certificates every 5 s, events and logs followed over SSE. The DOM is built with
// textContent only (names and log lines are data, never markup).

import { Unauthorized, follow, get, login, logout, operate } from "./api.js";
import { History, draw } from "./chart.js";
import { badge, cell, h, num } from "./dom.js";
import { fmtBytes, fmtCpu, fmtDuration, fmtPercent, fmtRate, fmtTime } from "./stats.js";
import { renderCerts, renderRoutes } from "./tables.js";

const POLL_MS = 1000;
const CERTS_MS = 5000;
const RATE_WINDOW_S = 5; // requests/s and quantiles over the last 5 s of counters
const MAX_EVENTS = 200;
const MAX_LOG_LINES = 500;
const PROXY_APP = "wharf-proxy";

const $ = (id) => document.getElementById(id);

// --- session -------------------------------------------------------------------------------

let session = null; // what runs while logged in: timers, streams, the apps' cards

function showLogin(message) {
  stopSession();
  $("dashboard").hidden = true;
  $("summary").hidden = true;
  $("session").hidden = true;
  $("login-view").hidden = false;
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("token").focus();
}

function startSession() {
  $("login-view").hidden = true;
  $("login-error").hidden = true;
  $("dashboard").hidden = false;
  $("summary").hidden = false;
  $("session").hidden = false;
  session = { timers: [], sources: [], cards: new Map(), samples: [], busy: new Set(),
              lastOk: 0, seenEvents: new Set(), logs: null };
  poll();
  pollCerts();
  session.timers.push(setInterval(poll, POLL_MS), setInterval(pollCerts, CERTS_MS),
                      setInterval(showLive, 500));
  session.sources.push(follow("/api/events?lines=50", {
    event: addEvent, dropped: (d) => addNote(`${d.dropped} events dropped`),
  }, () => ended()));
}

function stopSession() {
  if (session) {
    session.timers.forEach(clearInterval);
    session.sources.forEach((s) => s.close());
    if (session.logs) session.logs.close();
    session = null;
  }
  for (const id of ["apps", "routes", "certs", "events", "logs"]) $(id).replaceChildren();
  $("logs-panel").hidden = true;
}

// A stream closed or a poll got 401: ask the daemon whether the session still holds.
async function ended() {
  try {
    await get("/api/status?app=all");
  } catch (e) {
    if (e instanceof Unauthorized) showLogin("The session ended: log in again.");
  }
}

$("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = $("token").value.trim();
  $("token").value = "";
  try {
    if (await login(token)) startSession();
    else showLogin("That is not the admin token.");
  } catch (err) {
    showLogin(`The daemon did not answer: ${err.message}`);
  }
});

$("logout").addEventListener("click", async () => {
  await logout();
  showLogin();
});

// --- polling -------------------------------------------------------------------------------

async function poll() {
  const current = session;
  try {
    const [rows, traffic] = await Promise.all([get("/api/status"), get("/api/traffic")]);
    if (session !== current) return; // logged out meanwhile
    const now = performance.now() / 1000;
    current.samples.push({ t: now, traffic });
    while (current.samples.length > 1 && current.samples[1].t <= now - RATE_WINDOW_S) {
      current.samples.shift();
    }
    current.lastOk = Date.now();
    render(rows, traffic, current.samples.length > 1 ? current.samples[0] : null, now);
  } catch (e) {
    if (e instanceof Unauthorized) showLogin("The session ended: log in again.");
  }
}

async function pollCerts() {
  try {
    const rows = await get("/api/certs");
    if (session) renderCerts(rows);
  } catch (e) {
    if (e instanceof Unauthorized) showLogin("The session ended: log in again.");
  }
}

function showLive() {
  const live = $("live");
  const age = (Date.now() - session.lastOk) / 1000;
  const fresh = session.lastOk && age < 3;
  live.className = "live " + (fresh ? "ok" : "bad");
  live.textContent = !session.lastOk ? "connecting"
    : fresh ? "live" : `no answer for ${Math.round(age)} s`;
}

function render(rows, traffic, before, now) {
  const instances = rows.filter((r) => r.kind === "instance");
  const backends = rows.filter((r) => r.kind === "backend");
  const seconds = before ? now - before.t : 0;
  const old = before ? before.traffic : null;
  renderApps(instances);
  const totals = renderRoutes(backends, traffic, old, seconds);
  const running = instances.filter((r) => r.state === "RUNNING").length;
  $("sum-instances").textContent = `${running}/${instances.length}`;
  $("sum-rps").textContent = fmtRate(totals.rps);
  $("sum-errors").textContent = fmtPercent(totals.errorRate);
  $("sum-conns").textContent = String(traffic.connections);
}

// --- apps ----------------------------------------------------------------------------------

const STATE_TONE = { RUNNING: "ok", STARTING: "warn", STOPPING: "warn", BACKOFF: "warn",
                     EXITED: "bad", FATAL: "bad", STOPPED: "muted" };

function appTone(rows) {
  if (rows.some((r) => r.state === "FATAL" || r.state === "EXITED")) return "bad";
  if (rows.every((r) => r.state === "STOPPED")) return "muted";
  if (rows.every((r) => r.state === "RUNNING" && r.ready)) return "ok";
  return "warn";
}

function renderApps(instances) {
  const byApp = new Map();
  for (const row of instances) {
    if (!byApp.has(row.app)) byApp.set(row.app, []);
    byApp.get(row.app).push(row);
  }
  const container = $("apps");
  for (const [name, card] of session.cards) {
    if (!byApp.has(name)) {
      card.root.remove();
      session.cards.delete(name);
    }
  }
  for (const [name, rows] of byApp) {
    let card = session.cards.get(name);
    if (!card) {
      card = appCard(name);
      session.cards.set(name, card);
    }
    container.append(card.root); // keeps the daemon's order
    updateCard(card, rows);
  }
}

function appCard(name) {
  const isProxy = name === PROXY_APP;
  const action = (label, run) => h("button", { type: "button", class: "small",
                                               dataset: { action: label.toLowerCase() },
                                               onclick: () => run(name) }, label);
  const card = {
    name,
    state: h("span", { class: "badge" }),
    cpu: h("b", { class: "cpu-now" }),
    mem: h("b", { class: "mem-now" }),
    canvas: h("canvas", { class: "chart", "aria-label": `CPU and memory of ${name}` }),
    tbody: h("tbody"),
    history: new History(),
    buttons: [],
  };
  card.buttons = [action("Logs", openLogs)];
  if (!isProxy) {
    card.buttons.push(action("Restart", restartApp), action("Reload", reloadApp),
                      action("Scale", scaleApp));
  }
  card.root = h("article", { class: "card app", dataset: { app: name } },
    h("div", { class: "card-head" },
      h("h3", {}, name, isProxy ? h("small", {}, " proxy workers") : null),
      card.state,
      h("div", { class: "actions" }, card.buttons)),
    h("div", { class: "chart-row" },
      card.canvas,
      h("div", { class: "legend" },
        h("span", { class: "key cpu" }, "CPU ", card.cpu),
        h("span", { class: "key mem" }, "memory ", card.mem))),
    h("div", { class: "table-wrap" },
      h("table", { class: "instances" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "state"),
          h("th", { class: "num" }, "pid"), h("th", { class: "num" }, "CPU"),
          h("th", { class: "num" }, "memory"), h("th", { class: "num" }, "restarts"),
          h("th", { class: "num" }, "uptime"), h("th", {}, "ready"))),
        card.tbody)));
  return card;
}

function updateCard(card, rows) {
  const up = rows.filter((r) => r.state === "RUNNING").length;
  card.state.className = "badge " + appTone(rows);
  card.state.textContent = `${up}/${rows.length} running`;
  const cpu = rows.reduce((a, r) => a + (r.cpu_percent || 0), 0);
  const mem = rows.reduce((a, r) => a + (r.rss_bytes || 0), 0);
  card.history.push(cpu, mem);
  card.cpu.textContent = fmtCpu(cpu);
  card.mem.textContent = fmtBytes(mem);
  draw(card.canvas, card.history);
  card.tbody.replaceChildren(...rows.map((r) => h("tr", { dataset: { instance: r.instance } },
    cell(r.instance),
    cell(badge(r.state, STATE_TONE[r.state] || "muted")),
    num(r.pid ?? "–", "pid"),
    num(fmtCpu(r.cpu_percent)),
    num(fmtBytes(r.rss_bytes)),
    num(r.restarts, r.restarts ? "warn-text" : ""),
    num(fmtDuration(r.uptime_s)),
    cell(r.ready ? "yes" : r.reason || "no", r.ready ? "" : "muted reason"))));
}

// --- actions -------------------------------------------------------------------------------

function ask(text, count) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  $("confirm-count-label").hidden = count === undefined;
  if (count !== undefined) $("confirm-count").value = String(count);
  dialog.returnValue = "";
  dialog.showModal();
  if (count !== undefined) $("confirm-count").select();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

async function run(name, verb, path) {
  const card = session.cards.get(name);
  if (session.busy.has(name)) return;
  session.busy.add(name);
  card.buttons.forEach((b) => (b.disabled = true));
  const toast = notify(`${verb} ${name}…`, "info", 0);
  try {
    const result = await operate(path, (event) => {
      toast.textContent = `${verb} ${name}: ${event.message}`;
    });
    const pids = Array.isArray(result)
      ? result.filter((r) => r.app === name && r.pid).map((r) => r.pid) : [];
    toast.textContent = `${name}: ${verb.toLowerCase()} done` +
      (pids.length ? ` (pid ${pids.join(", ")})` : "");
    toast.className = "toast ok";
  } catch (e) {
    toast.textContent = `${name}: ${verb.toLowerCase()} failed: ${e.message}`;
    toast.className = "toast bad";
    if (e instanceof Unauthorized) showLogin("The session ended: log in again.");
  } finally {
    setTimeout(() => toast.remove(), 8000);
    if (session) {
      session.busy.delete(name);
      card.buttons.forEach((b) => (b.disabled = false));
    }
  }
}

const app = (name) => encodeURIComponent(name);

async function restartApp(name) {
  if (await ask(`Restart ${name}? An app with a route is rolled: new instances first.`)) {
    await run(name, "Restarting", `/api/apps/${app(name)}/restart`);
  }
}

async function reloadApp(name) {
  if (await ask(`Reload ${name}: replace its instances one batch at a time?`)) {
    await run(name, "Reloading", `/api/apps/${app(name)}/reload`);
  }
}

async function scaleApp(name) {
  const count = session.cards.get(name).tbody.children.length;
  if (await ask(`How many instances of ${name}?`, count)) {
    const wanted = Number($("confirm-count").value);
    await run(name, "Scaling", `/api/apps/${app(name)}/scale?count=${wanted}`);
  }
}

function notify(text, tone, ms = 6000) {
  const toast = h("div", { class: "toast " + tone, onclick: () => toast.remove() }, text);
  $("toasts").append(toast);
  if (ms) setTimeout(() => toast.remove(), ms);
  return toast;
}

// --- events --------------------------------------------------------------------------------

function subject(e) {
  if (e.app !== null && e.app !== undefined) {
    return e.instance !== null && e.instance !== undefined ? `${e.app}.${e.instance}` : e.app;
  }
  if (e.backend) return `${e.service} ${e.backend}`;
  return e.service || e.certificate || "";
}

function addEvent(e) {
  if (!session || session.seenEvents.has(e.seq)) return;
  session.seenEvents.add(e.seq);
  const list = $("events");
  list.prepend(h("li", { class: e.level === "warning" ? "warning" : "", dataset: { seq: e.seq,
                                                                                kind: e.kind } },
    h("time", {}, fmtTime(e.time)),
    h("span", { class: "kind" }, e.kind),
    h("span", { class: "subject" }, subject(e)),
    h("span", { class: "message" }, e.message)));
  while (list.children.length > MAX_EVENTS) list.lastChild.remove();
}

function addNote(text) {
  $("events").prepend(h("li", { class: "warning" }, text));
}

// --- logs ----------------------------------------------------------------------------------

// Lines are gathered and put in the page at most ten times a second (a busy app writes
// hundreds a second; one layout per line would stall the page).
function openLogs(name) {
  closeLogs();
  const pre = $("logs");
  $("logs-title").textContent = `Logs: ${name}`;
  $("logs-panel").hidden = false;
  $("logs-panel").dataset.app = name;
  let pending = [];
  const flush = () => {
    if (!pending.length) return;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const lines = pending.slice(-MAX_LOG_LINES);
    pending = [];
    pre.append(...lines);
    const extra = pre.childElementCount - MAX_LOG_LINES;
    for (let i = 0; i < extra; i++) pre.firstElementChild.remove();
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  };
  const line = (message) => {
    for (const text of message.data.split("\n").filter((t) => t)) {
      pending.push(h("span", { class: message.stream === "err" ? "err" : "" }, text + "\n"));
    }
  };
  const timer = setInterval(flush, 100);
  const source = follow(`/api/apps/${app(name)}/logs?lines=100`, { out: line, err: line },
                        () => ended());
  session.logs = { close: () => { clearInterval(timer); source.close(); } };
}

function closeLogs() {
  if (session && session.logs) session.logs.close();
  if (session) session.logs = null;
  $("logs").replaceChildren();
  $("logs-panel").hidden = true;
}

$("logs-close").addEventListener("click", closeLogs);

// --- start ---------------------------------------------------------------------------------

(async () => {
  try {
    await get("/api/status?app=all");
    startSession();
  } catch (e) {
    showLogin(e instanceof Unauthorized ? "" : `The daemon did not answer: ${e.message}`);
  }
})();
