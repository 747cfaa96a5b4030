// The routes and certificates tables, redrawn on each reading: routes in config order with
// their backends under them, each with its health and what the counters did over the window.

import { badge, cell, h, num } from "./dom.js";
import { fmtDate, fmtLatency, fmtPercent, fmtRate, rates } from "./stats.js";

// --- routes --------------------------------------------------------------------------------

function routeLabel(row) {
  return (row.host || "*") + row.route;
}

function trafficCells(stat, inflight) {
  return [
    num(inflight ?? "–"),
    num(fmtRate(stat && stat.rps)),
    num(fmtPercent(stat && stat.errorRate), stat && stat.errorRate > 0 ? "bad-text" : ""),
    num(fmtLatency(stat && stat.p50)),
    num(fmtLatency(stat && stat.p99)),
    num(stat ? stat.total.toLocaleString("en") : "0"),
  ];
}

export function renderRoutes(backendRows, traffic, old, seconds) {
  const bounds = traffic.bounds;
  const index = (list, key) => new Map((list || []).map((r) => [key(r), r]));
  const oldRoutes = index(old && old.routes, (r) => r.route);
  const oldBackends = index(old && old.backends, (r) => r.service + " " + r.backend);
  const routeStats = new Map(traffic.routes.map((r) => [r.route,
    rates(r, oldRoutes.get(r.route), seconds, bounds, "duration")]));
  const backendStats = new Map(traffic.backends.map((r) => {
    const key = r.service + " " + r.backend;
    return [key, rates(r, oldBackends.get(key), seconds, bounds, "upstream")];
  }));
  // Routes in config order (the status rows'), then those only the counters know (static
  // files), then the requests no route took (label "").
  const groups = new Map();
  for (const row of backendRows) {
    const label = routeLabel(row);
    if (!groups.has(label)) groups.set(label, { service: row.service, rows: [] });
    groups.get(label).rows.push(row);
  }
  const labels = traffic.routes.map((r) => r.route).sort((a, b) => (a === "") - (b === ""));
  for (const label of labels) if (!groups.has(label)) groups.set(label, { rows: [] });
  const out = [];
  for (const [label, group] of groups) {
    const up = group.rows.filter((r) => r.health !== "down" && !r.ejected).length;
    const inflight = group.rows.reduce((a, r) => a + r.inflight, 0);
    const tone = !group.rows.length ? "muted" : up === group.rows.length ? "ok"
      : up ? "warn" : "bad";
    out.push(h("tr", { class: "route", dataset: { route: label } },
      cell(label === "" ? h("span", { class: "muted" }, "no route (404, bad requests)")
        : h("span", {}, label.startsWith("*") ? label.slice(1) : label,
          h("span", { class: "muted" }, group.service ? `  →  ${group.service}` : "  static"))),
      cell(group.rows.length ? badge(`${up}/${group.rows.length} up`, tone) : ""),
      trafficCells(routeStats.get(label), group.rows.length ? inflight : null)));
    for (const row of group.rows) {
      const stat = backendStats.get(row.service + " " + row.backend);
      const health = badge(row.health, row.health === "up" ? "ok"
        : row.health === "down" ? "bad" : "muted");
      out.push(h("tr", { class: "backend", dataset: { backend: row.backend },
                         title: row.last_error || null },
        cell(h("span", {}, row.backend, row.app ? h("span", { class: "muted" }, `  ${row.app}`)
          : null, row.last_error ? h("div", { class: "error-line" }, row.last_error) : null)),
        cell(h("span", {}, health, row.ejected ? badge("ejected", "bad") : null)),
        trafficCells(stat, row.inflight)));
    }
  }
  if (!out.length) out.push(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "No routes.")));
  document.getElementById("routes").replaceChildren(...out);
  // Every request passes one route: the routes add up to the whole proxy.
  const all = [...routeStats.values()].filter((s) => s.rps !== null);
  const rps = all.length ? all.reduce((a, s) => a + s.rps, 0) : null;
  const errors = all.reduce((a, s) => a + (s.errorRate || 0) * s.rps * seconds, 0);
  return { rps, errorRate: rps ? errors / (rps * seconds) : null };
}

// --- certificates --------------------------------------------------------------------------

function inDays(unix) {
  return (unix - Date.now() / 1000) / 86400;
}

export function renderCerts(rows) {
  const out = rows.map((r) => {
    const days = r.not_after ? inDays(r.not_after) : null;
    const tone = days === null ? "muted" : days < 7 ? "bad" : days < 21 ? "warn" : "ok";
    const left = days === null ? "–" : days < 0 ? "expired" : days < 2
      ? `in ${Math.round(days * 24)} h` : `in ${Math.floor(days)} d`;
    return h("tr", { dataset: { cert: r.name } },
      cell(r.name), cell(r.source), cell(r.issuer || "–", "muted"),
      num(h("span", {}, r.not_after ? fmtDate(r.not_after) + "  " : "", badge(left, tone))),
      num(r.next_renewal ? fmtDate(r.next_renewal) : "–"),
      cell(r.last_error || "", "bad-text"));
  });
  if (!out.length) {
    out.push(h("tr", {}, h("td", { colspan: 6, class: "empty" },
      "No certificates: the config has no HTTPS.")));
  }
  document.getElementById("certs").replaceChildren(...out);
}
