// Rates and quantiles from two readings of /api/traffic, and the formatting of numbers.
// The counters only grow (the daemon keeps a gone worker's counts), so the difference of two
// readings is what happened between them; a counter that went down (the daemon restarted)
// reads as a fresh start from zero.

// Requests by status class: index 0 is "no answer", 1-5 are 1xx-5xx.
const NO_ANSWER = 0;
const SERVER_ERROR = 5;

function delta(now, before) {
  if (!before) return now.slice();
  const diff = now.map((v, i) => v - (before[i] || 0));
  return diff.some((v) => v < 0) ? now.slice() : diff;
}

const sum = (values) => values.reduce((a, b) => a + b, 0);

// Prometheus's histogram_quantile: find the bucket the q-th observation falls in and
// interpolate linearly inside it. `counts` are per bucket (not cumulated), the last one above
// every bound; an answer in that one is reported as the largest bound (shown as "> 10 s").
export function quantile(q, bounds, counts) {
  const total = sum(counts);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (seen + counts[i] >= rank && counts[i] > 0) {
      if (i >= bounds.length) return { seconds: bounds[bounds.length - 1], above: true };
      const low = i === 0 ? 0 : bounds[i - 1];
      return { seconds: low + (bounds[i] - low) * ((rank - seen) / counts[i]), above: false };
    }
    seen += counts[i];
  }
  return { seconds: bounds[bounds.length - 1], above: true };
}

// What a counter row (a route's or a backend's) did between two readings `seconds` apart.
// `hist` names its histogram: "duration" for routes, "upstream" for backends.
export function rates(now, before, seconds, bounds, hist) {
  const requests = delta(now.requests, before && before.requests);
  const buckets = delta(now[hist].buckets, before && before[hist].buckets);
  const count = sum(requests);
  const errors = requests[NO_ANSWER] + requests[SERVER_ERROR];
  return {
    total: sum(now.requests),
    rps: seconds > 0 ? count / seconds : null,
    errorRate: count > 0 ? errors / count : null,
    p50: quantile(0.5, bounds, buckets),
    p99: quantile(0.99, bounds, buckets),
  };
}

export function fmtRate(value) {
  if (value === null || value === undefined) return "–";
  if (value === 0) return "0";
  return value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString("en");
}

export function fmtPercent(fraction) {
  if (fraction === null || fraction === undefined) return "–";
  const p = fraction * 100;
  return (p === 0 ? "0" : p < 1 ? p.toFixed(2) : p.toFixed(1)) + " %";
}

export function fmtLatency(q) {
  if (!q) return "–";
  const ms = q.seconds * 1000;
  const text = ms < 1 ? ms.toFixed(2) + " ms" : ms < 1000 ? ms.toFixed(ms < 10 ? 1 : 0) + " ms"
    : (ms / 1000).toFixed(2) + " s";
  return q.above ? "> " + text : text;
}

export function fmtBytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return (unit === 0 ? String(value) : value.toFixed(value < 10 ? 1 : 0)) + " " + units[unit];
}

export function fmtCpu(percent) {
  return percent === null || percent === undefined ? "–" : percent.toFixed(1) + " %";
}

// 3d 4h, 2h 05m, 4m 09s, 12s: the two largest units, like `wharf status`.
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${two(m)}m`;
  if (m) return `${m}m ${two(r)}s`;
  return `${r}s`;
}

export function fmtTime(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function fmtDate(unixSeconds) {
  return new Date(unixSeconds * 1000).toISOString().slice(0, 10);
}
