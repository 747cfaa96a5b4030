// The admin API as the page uses it: the session cookie (POST /api/session) authenticates
// every call, EventSource streams included; the page never sees or keeps the token.

export class Unauthorized extends Error {}

async function check(response) {
  if (response.status === 401) throw new Unauthorized("unauthorized");
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body.error + (body.hint ? ` (${body.hint})` : "");
    } catch { /* not JSON: keep the status line */ }
    throw new Error(message);
  }
  return response;
}

export async function get(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" },
                                       cache: "no-store" });
  return (await check(response)).json();
}

export async function login(token) {
  const response = await fetch("/api/session", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.status === 401) return false;
  await check(response);
  return true;
}

export async function logout() {
  await fetch("/api/session", { method: "DELETE" });
}

// A long operation (restart, scale, reload) with its progress: `onProgress(event)` for each
// event of the change, then the result, or an Error with the daemon's message.
export async function operate(path, onProgress) {
  const response = await check(await fetch(path, {
    method: "POST", headers: { Accept: "application/x-ndjson" },
  }));
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const lines = pending.split("\n");
    pending = lines.pop();
    for (const line of lines.filter((l) => l.trim())) {
      const message = JSON.parse(line);
      if (message.progress) onProgress(message.progress);
      else if (message.ok === true) return message.result;
      else if (message.ok === false) {
        throw new Error(message.error + (message.hint ? ` (${message.hint})` : ""));
      }
    }
  }
  throw new Error("the daemon ended the answer early");
}

// Follow an SSE stream; `handlers` maps event names to functions of the parsed data. The
// browser reconnects on its own (resuming events after the last seq it saw); `onClosed` is
// called if it gives up, as it does when an answer is not a stream (a 401).
export function follow(path, handlers, onClosed) {
  const source = new EventSource(path);
  for (const [name, handler] of Object.entries(handlers)) {
    source.addEventListener(name, (e) => handler(JSON.parse(e.data)));
  }
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) onClosed();
  });
  return source;
}
