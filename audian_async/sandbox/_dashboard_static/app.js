// The sandbox dashboard: one live stream (server-sent events) feeds a plain store, and the
// page re-renders at most once per animation frame, however many updates arrived meanwhile.
// Lists are capped in memory and in rows drawn, so a thousand live calls stay cheap.
import { h, render } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";

const html = htm.bind(h);
const API = "/_dashboard/api";
const CALLS_KEPT = 2000; // calls the page remembers (oldest forgotten first)
const ROWS_KEPT = 500; // deliveries and requests remembered
const RECORDINGS_KEPT = 200;
const CALL_ROWS = 200; // rows drawn: the rest are counted, not rendered
const LIST_ROWS = 100;
const ROUTES = ["*", "POST /v2/calls", "POST /v2/calls/batch", "GET /v2/calls/{id}", "GET /v2/recordings/{id}"];

const store = {
  connection: "connecting",
  overview: null,
  faults: null,
  calls: new Map(), // by id, in creation order
  deliveries: [], // newest first
  requests: [],
  recordings: [],
};

// --- the live stream -------------------------------------------------------------------

let frame = 0;
function schedule() {
  if (!frame) frame = requestAnimationFrame(() => { frame = 0; draw(); });
}

function newestFirst(rows, kept, older) {
  return rows.slice().reverse().concat(older).slice(0, kept);
}

function putCalls(rows) {
  for (const row of rows) store.calls.set(row.call_id, row);
  for (const id of store.calls.keys()) {
    if (store.calls.size <= CALLS_KEPT) break;
    store.calls.delete(id);
  }
}

function onSnapshot(data) {
  store.overview = data.overview;
  store.faults = data.faults;
  store.calls = new Map();
  putCalls(data.calls.slice().reverse());
  store.deliveries = data.deliveries;
  store.requests = data.requests;
  store.recordings = data.recordings;
  store.connection = "live";
  schedule();
}

function onUpdate(data) {
  store.overview = data.overview;
  if (data.faults) store.faults = data.faults;
  if (data.calls_reset) {
    store.calls = new Map();
    putCalls(data.calls.slice().reverse());
  } else {
    putCalls(data.calls);
  }
  store.deliveries = newestFirst(data.deliveries, ROWS_KEPT, store.deliveries);
  store.requests = newestFirst(data.requests, ROWS_KEPT, store.requests);
  store.recordings = newestFirst(data.recordings, RECORDINGS_KEPT, store.recordings);
  schedule();
}

function connect() {
  const source = new EventSource(`${API}/events`);
  source.addEventListener("snapshot", (e) => onSnapshot(JSON.parse(e.data)));
  source.addEventListener("update", (e) => onUpdate(JSON.parse(e.data)));
  source.onerror = () => {
    // EventSource reconnects by itself (and gets a fresh snapshot) unless the sandbox
    // said it is stopping (204), which closes it.
    store.connection = source.readyState === EventSource.CLOSED ? "stopped" : "reconnecting";
    schedule();
  };
}

// --- small pieces ----------------------------------------------------------------------

const time = (iso) => (iso ? iso.slice(11, 19) : "");
const ms = (value) => (value === null || value === undefined ? "–" : `${value.toFixed(1)} ms`);
const short = (text, n = 18) => (text && text.length > n ? `${text.slice(0, n)}…` : text || "");

function Status({ value, testid }) {
  return html`<span class="status s-${value}" data-testid=${testid}>${value}</span>`;
}

function Count({ label, value, testid }) {
  return html`<div class="count"><span class="count-value" data-testid=${testid}>${value ?? "–"}</span>
    <span class="count-label">${label}</span></div>`;
}

function Header() {
  const o = store.overview;
  const calls = o ? o.calls : {};
  return html`<header>
    <div class="title">
      <h1>Audian sandbox</h1>
      <span class="connection c-${store.connection}" data-testid="connection">${store.connection}</span>
    </div>
    ${o && html`<dl class="settings">
      <dt>API</dt><dd><code>${o.sandbox.base_url}</code></dd>
      <dt>API key</dt><dd><code data-testid="api-key">${o.sandbox.api_key}</code></dd>
      <dt>Webhook secret</dt><dd><code data-testid="webhook-secret">${o.sandbox.webhook_secret}</code></dd>
      <dt>Webhooks to</dt><dd>${o.sandbox.webhook_urls.join(", ") || "(none)"}</dd>
      <dt>Speed</dt><dd>×${o.sandbox.speed}</dd>
    </dl>`}
    <div class="counts">
      <${Count} label="created" value=${calls.created} testid="count-created" />
      <${Count} label="live" value=${calls.live} testid="count-live" />
      <${Count} label="scheduled" value=${calls.scheduled} testid="count-scheduled" />
      <${Count} label="completed" value=${calls.completed} testid="count-completed" />
      <${Count} label="failed" value=${calls.failed} testid="count-failed" />
      <${Count} label="webhooks pending" value=${o && o.webhooks.pending} testid="count-pending" />
      <${Count} label="API requests" value=${o && o.stats.requests} testid="count-requests" />
    </div>
  </header>`;
}

// --- calls -----------------------------------------------------------------------------

const FILTERS = { all: null, live: ["initiated", "ringing", "answered"], scheduled: ["scheduled"], completed: ["completed"], failed: ["failed"] };

function Calls({ selected, select }) {
  const [filter, setFilter] = useState("all");
  const wanted = FILTERS[filter];
  const all = Array.from(store.calls.values());
  const rows = [];
  let matching = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const call = all[i];
    if (wanted && !wanted.includes(call.status)) continue;
    matching++;
    if (rows.length < CALL_ROWS) rows.push(call);
  }
  return html`<section class="calls">
    <div class="toolbar">
      ${Object.keys(FILTERS).map((name) => html`<button class=${name === filter ? "on" : ""}
        onClick=${() => setFilter(name)} aria-pressed=${name === filter}>${name}</button>`)}
      <span class="shown" data-testid="calls-shown">${rows.length} of ${matching} calls</span>
    </div>
    <table>
      <thead><tr><th>Created</th><th>Call</th><th>To</th><th>From</th><th>Status</th><th>Reason</th><th>Events</th></tr></thead>
      <tbody>${rows.map((c) => html`<tr key=${c.call_id} data-testid="call-row" data-call-id=${c.call_id}
          class=${c.call_id === selected ? "selected" : ""} onClick=${() => select(c.call_id)}>
        <td>${time(c.created_at)}</td><td><code>${c.call_id}</code></td><td>${c.to}</td><td>${c.from}</td>
        <td><${Status} value=${c.status} testid="call-status" /></td><td>${c.reason || ""}</td>
        <td>${c.events}${c.recordings ? " ♪" : ""}</td></tr>`)}</tbody>
    </table>
    ${!rows.length && html`<p class="empty">No calls yet: place one with the SDK or curl.</p>`}
  </section>`;
}

function CallDetail({ id }) {
  const summary = store.calls.get(id);
  const [detail, setDetail] = useState(null);
  // Refetched whenever the call's row changes (status, events, recordings).
  const key = summary ? `${summary.status}/${summary.events}/${summary.recordings}` : "";
  useEffect(() => {
    let live = true;
    fetch(`${API}/calls/${encodeURIComponent(id)}`).then((r) => (r.ok ? r.json() : null))
      .then((d) => { if (live) setDetail(d); });
    return () => { live = false; };
  }, [id, key]);
  if (!detail) return html`<aside class="detail"><p class="empty">Loading ${id}…</p></aside>`;
  return html`<aside class="detail" data-testid="call-detail">
    <h2><code>${detail.call_id}</code> <${Status} value=${detail.status} testid="detail-status" /></h2>
    <p>${detail.from} → ${detail.to}${detail.reason ? ` · ${detail.reason}` : ""} · attempt ${detail.attempt}
      ${detail.ended_by ? ` · ended by ${detail.ended_by}` : ""}</p>
    <h3>Timeline</h3>
    <ol class="timeline" data-testid="timeline">${detail.events.map((e) => html`<li key=${e.id}>
      <span class="when">${time(e.timestamp)}</span> <strong>${e.type}</strong>
      ${e.data.reason ? ` ${e.data.reason} (${e.data.reason_code})` : ""}
      ${e.data.duration !== undefined ? ` ${e.data.duration} s` : ""}</li>`)}</ol>
    <h3>Call control</h3>
    ${detail.actions.length
      ? html`<ul class="actions" data-testid="actions">${detail.actions.map((a, i) => html`<li key=${i}><code>${a}</code></li>`)}</ul>`
      : html`<p class="empty">No actions ran.</p>`}
    ${detail.recordings.length > 0 && html`<h3>Recordings</h3>${detail.recordings.map((r) => html`
      <div class="recording" key=${r.recording_id}><code>${r.recording_id}</code> ${r.duration} s
        <audio controls preload="none" src=${r.audio_url}></audio></div>`)}`}
    <h3>Deliveries</h3>
    <${Deliveries} rows=${detail.deliveries} compact />
  </aside>`;
}

// --- journals --------------------------------------------------------------------------

function deliveryOutcome(d) {
  if (d.dropped) return "dropped";
  if (d.status_code !== null) return String(d.status_code);
  return d.error || "failed";
}

function Deliveries({ rows, compact }) {
  if (!rows.length) return html`<p class="empty">No webhook deliveries yet.</p>`;
  return html`<table class="deliveries">
    <thead><tr><th>At</th><th>Event</th>${!compact && html`<th>Call</th><th>URL</th>`}<th>Attempt</th>
      <th>Status</th><th>Latency</th><th>Signature</th></tr></thead>
    <tbody>${rows.slice(0, LIST_ROWS).map((d, i) => html`<tr key=${i} data-testid="delivery-row" data-call-id=${d.call_id}>
      <td>${time(d.at)}</td><td>${d.event}</td>
      ${!compact && html`<td><code>${d.call_id}</code></td><td>${short(d.url, 48)}</td>`}
      <td>${d.attempt}</td>
      <td><span class=${`outcome ${d.ok ? "ok" : "bad"}`} data-testid="delivery-status">${deliveryOutcome(d)}</span>
        ${d.duplicate ? html` <span class="flag">duplicate</span>` : ""}</td>
      <td>${ms(d.latency_ms)}</td><td><code>${d.signature || ""}</code></td></tr>`)}</tbody>
  </table>`;
}

function Requests() {
  const rows = store.requests.slice(0, LIST_ROWS);
  if (!rows.length) return html`<p class="empty">No API requests yet.</p>`;
  return html`<table class="requests">
    <thead><tr><th>At</th><th>Method</th><th>Path</th><th>Status</th><th>Latency</th><th>Idempotency key</th><th>Notes</th></tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${i} data-testid="request-row">
      <td>${time(r.at)}</td><td>${r.method}</td><td><code>${r.path}</code></td>
      <td><span class=${`outcome ${r.status && r.status < 400 ? "ok" : "bad"}`} data-testid="request-status">${r.status ?? "no reply"}</span></td>
      <td>${ms(r.latency_ms)}</td><td><code title=${r.idempotency_key || ""}>${short(r.idempotency_key, 24)}</code></td>
      <td>${r.replay ? html`<span class="flag">replay</span>` : ""}
        ${r.fault ? html`<span class="flag fault">injected ${r.fault === "error" ? "error" : "no reply"}</span>` : ""}
        ${r.error && !r.fault ? r.error : ""}</td></tr>`)}</tbody>
  </table>`;
}

function Recordings() {
  const rows = store.recordings.slice(0, LIST_ROWS);
  if (!rows.length) return html`<p class="empty">No recordings yet (create a call with recording enabled).</p>`;
  return html`<table class="recordings">
    <thead><tr><th>Recording</th><th>Call</th><th>Duration</th><th>Format</th><th>Listen</th></tr></thead>
    <tbody>${rows.map((r) => html`<tr key=${r.recording_id} data-testid="recording-row">
      <td><code>${r.recording_id}</code></td><td><code>${r.call_id}</code></td><td>${r.duration} s</td>
      <td>${r.format}${r.requested_format && r.requested_format !== r.format ? ` (asked ${r.requested_format})` : ""}</td>
      <td><audio controls preload="none" src=${r.audio_url}></audio></td></tr>`)}</tbody>
  </table>`;
}

// --- the knobs -------------------------------------------------------------------------

function draftOf(faults) {
  const rates = (map) => Object.fromEntries(ROUTES.map((r) => [r, String(map[r] ?? 0)]));
  return {
    latency: String(faults.latency), error_status: String(faults.error_status),
    error_rate: rates(faults.error_rate), no_reply_rate: rates(faults.no_reply_rate),
    no_reply_hold: String(faults.no_reply_hold), drop_rate: String(faults.drop_rate),
    duplicate_rate: String(faults.duplicate_rate), max_concurrent: String(faults.max_concurrent),
  };
}

function changeOf(draft) {
  const rates = (map) => Object.fromEntries(ROUTES.map((r) => [r, Number(map[r])]).filter(([, v]) => v));
  return {
    latency: Number(draft.latency), error_status: Number(draft.error_status),
    error_rate: rates(draft.error_rate), no_reply_rate: rates(draft.no_reply_rate),
    no_reply_hold: Number(draft.no_reply_hold), drop_rate: Number(draft.drop_rate),
    duplicate_rate: Number(draft.duplicate_rate), max_concurrent: Number(draft.max_concurrent),
  };
}

function Knobs() {
  const faults = store.faults;
  const [draft, setDraft] = useState(null);
  const [dirty, setDirty] = useState(false);
  const [message, setMessage] = useState("");
  const current = faults ? JSON.stringify(faults) : "";
  // Follow the sandbox's knobs (changed from Python or another tab) until edited here.
  useEffect(() => { if (faults && !dirty) setDraft(draftOf(faults)); }, [current, dirty]);
  if (!draft) return html`<p class="empty">Loading…</p>`;
  const edit = (path, value) => {
    const next = { ...draft, error_rate: { ...draft.error_rate }, no_reply_rate: { ...draft.no_reply_rate } };
    if (path.length === 2) next[path[0]][path[1]] = value; else next[path[0]] = value;
    setDraft(next); setDirty(true); setMessage("");
  };
  const apply = async (event) => {
    event.preventDefault();
    const response = await fetch(`${API}/faults`, {
      method: "PATCH",
      // The header is what the sandbox asks of a knob change: no other site can send it.
      headers: { "Content-Type": "application/json", "X-Audian-Dashboard": "1" },
      body: JSON.stringify(changeOf(draft)),
    });
    const body = await response.json();
    if (response.ok) { store.faults = body; setDirty(false); setMessage("Applied"); schedule(); }
    else setMessage(body.message || `Refused (${response.status})`);
  };
  const number = (label, name, step, extra = {}) => html`<label>${label}
    <input type="number" min="0" step=${step} value=${draft[name]} ...${extra}
      onInput=${(e) => edit([name], e.currentTarget.value)} /></label>`;
  return html`<form class="knobs" onSubmit=${apply} data-testid="knobs" novalidate>
    <fieldset><legend>API faults</legend>
      ${number("Latency (seconds)", "latency", "0.01", { max: 60 })}
      <label>Injected error status
        <select value=${draft.error_status} onChange=${(e) => edit(["error_status"], e.currentTarget.value)}>
          ${[429, 500, 502, 503, 504].map((s) => html`<option value=${String(s)}>${s}</option>`)}
        </select></label>
      ${number("No-reply hold (seconds)", "no_reply_hold", "1")}
      <table><thead><tr><th>Route</th><th>Error rate</th><th>No-reply rate</th></tr></thead>
        <tbody>${ROUTES.map((route) => html`<tr key=${route}><td><code>${route}</code></td>
          ${["error_rate", "no_reply_rate"].map((knob) => html`<td><input type="number" min="0" max="1" step="0.05"
            aria-label=${`${knob === "error_rate" ? "Error rate" : "No-reply rate"} for ${route}`}
            value=${draft[knob][route]} onInput=${(e) => edit([knob, route], e.currentTarget.value)} /></td>`)}
        </tr>`)}</tbody></table>
    </fieldset>
    <fieldset><legend>Webhooks and limits</legend>
      ${number("Webhook drop rate", "drop_rate", "0.05", { max: 1 })}
      ${number("Webhook duplicate rate", "duplicate_rate", "0.05", { max: 1 })}
      ${number("Live-call limit", "max_concurrent", "1")}
    </fieldset>
    <div class="buttons">
      <button type="submit" class="primary">Apply</button>
      <button type="button" disabled=${!dirty} onClick=${() => { setDirty(false); setMessage(""); }}>Discard changes</button>
      <span class="message" data-testid="knobs-message" role="status">${message}</span>
    </div>
  </form>`;
}

// --- the page --------------------------------------------------------------------------

const TABS = ["Calls", "Deliveries", "Requests", "Recordings", "Faults"];

function App() {
  const [tab, setTab] = useState("Calls");
  const [selected, select] = useState(null);
  return html`<${Header} />
    <nav role="tablist">${TABS.map((name) => html`<button role="tab" aria-selected=${name === tab}
      onClick=${() => setTab(name)}>${name}</button>`)}</nav>
    ${tab === "Calls" && html`<div class="split"><${Calls} selected=${selected} select=${select} />
      ${selected && html`<${CallDetail} id=${selected} />`}</div>`}
    ${tab === "Deliveries" && html`<section><${Deliveries} rows=${store.deliveries} /></section>`}
    ${tab === "Requests" && html`<section><${Requests} /></section>`}
    ${tab === "Recordings" && html`<section><${Recordings} /></section>`}
    ${tab === "Faults" && html`<section><${Knobs} /></section>`}`;
}

const root = document.getElementById("app");
root.textContent = "";
function draw() { render(html`<${App} />`, root); }
draw();
connect();
