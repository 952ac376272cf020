// The station page: polls GET /api/state and renders it; all logic lives in the library.
// Text is always set with textContent, never parsed as HTML.
"use strict";

const STATE_EVERY_MS = 500;     // how often the page asks for the session state
const PREVIEW_EVERY_MS = 900;   // how often a preview frame is fetched per device
const EVENTS_SHOWN = 14;

const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function fill(list, items, render, emptyText) {
  list.replaceChildren();
  if (!items.length) { list.appendChild(el("li", emptyText, "none")); return; }
  items.forEach((item) => list.appendChild(render(item)));
}

async function api(path, options) {
  const reply = await fetch(path, Object.assign({ cache: "no-store" }, options || {}));
  const body = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const error = (body && body.error) || {};
    throw new Error(error.message || `HTTP ${reply.status}`);
  }
  return body;
}

function renderDevices(devices) {
  const body = $("devices").tBodies[0];
  body.replaceChildren();
  for (const d of devices) {
    const row = el("tr", null, d.active ? "active" : "");
    row.dataset.device = d.id;
    const name = el("td", d.id + (d.active ? " (active)" : ""));
    name.title = `${d.make} ${d.model}, ${d.sub_type}`;
    row.appendChild(name);
    row.appendChild(el("td", d.kind));
    const state = el("td", d.state + (d.reason ? `: ${d.reason}` : ""), "dev-" + d.state.split(" ")[0]);
    row.appendChild(state);
    body.appendChild(row);
  }
}

function renderFingers(state) {
  const grid = $("fingers");
  grid.replaceChildren();
  let captured = 0;
  for (const f of state.fingers) {
    const below = f.status === "captured" && f.passed === false;
    const cell = el("div", null, `finger ${f.status}${below ? " below" : ""}`);
    cell.dataset.position = f.position;
    cell.dataset.status = f.status;
    cell.appendChild(el("div", `${f.position}. ${f.name}`, "name"));
    cell.appendChild(el("div", f.quality === null ? "–" : f.quality, "quality"));
    const bar = el("div", null, "bar");
    const fillBar = el("span");
    fillBar.style.width = `${Math.max(0, Math.min(100, f.quality || 0))}%`;
    bar.appendChild(fillBar);
    cell.appendChild(bar);
    let meta = f.status;
    if (f.attempts) meta += `, ${f.attempts} attempt${f.attempts > 1 ? "s" : ""}`;
    if (below) meta += ", below gate";
    cell.appendChild(el("div", meta, "meta"));
    if (f.note) cell.title = f.note;
    grid.appendChild(cell);
    if (f.status === "captured") captured += 1;
  }
  $("finger-count").textContent = `${captured} of ${state.fingers.length} captured`;
}

function renderCurrent(state) {
  const c = state.current;
  let text;
  if (state.state === "paused") text = `Paused: ${state.reason}`;
  else if (c && c.what === "face") text = `Face: attempt ${c.attempt}, quality ${c.quality} on ${c.device}`;
  else if (c) text = `Capturing ${c.name} (position ${c.position}): attempt ${c.attempt}, quality ${c.quality} on ${c.device}`;
  else if (state.state === "running") text = "Starting…";
  else if (state.state === "done") text = "Enrollment finished.";
  else if (state.state === "failed") text = `Session failed: ${state.reason}`;
  else text = "Press “Start enrollment”.";
  $("current").textContent = text;
}

function renderFace(face) {
  const box = $("face-verdict");
  box.replaceChildren();
  const v = face.verdict;
  if (!v) {
    const status = face.status === "off" ? "not captured at this station" :
      face.attempts ? `attempt ${face.attempts}, quality ${face.quality}` : "not captured yet";
    box.appendChild(el("p", status, "none"));
    return;
  }
  box.appendChild(el("p", v.passed ? "Face quality: PASSED" : "Face quality: FAILED", "result " + (v.passed ? "pass" : "fail")));
  box.appendChild(el("p", `quality ${v.quality === null ? "–" : v.quality} / 100, ${face.attempts} attempt${face.attempts === 1 ? "" : "s"}`));
  const list = el("ul");
  fill(list, v.passed ? v.measures.filter((m) => m.passed !== null).map((m) => m.text) : v.reasons,
    (t) => el("li", t), "no measures");
  box.appendChild(list);
}

function renderSummary(state) {
  const box = $("summary");
  box.replaceChildren();
  const s = state.summary;
  if (!s) { box.appendChild(el("p", "the summary appears when the session ends", "none")); return; }
  const dl = el("dl");
  const add = (k, v) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); };
  add("session", s.session_id);
  if (state.person_id) add("person", state.person_id);
  add("fingers", `${s.fingers_captured} captured, ${s.fingers_passed_gate} passed the gate`);
  add("face", s.face ? `quality ${s.face.quality}${s.face.passed_gate ? "" : " (below gate)"}` : "none");
  const excepted = Object.keys(s.exceptions);
  add("exceptions", excepted.length ? `${excepted.length} (${excepted.join(", ")}; see Exceptions)` : "none");
  add("retries", s.retries);
  add("device switches", s.switches.length ? s.switches.map((w) => `${w.from} → ${w.to}`).join("; ") : "none");
  add("hash chain", `${s.verified ? "verified" : "BROKEN"} …${s.final_hash.slice(-16)}`);
  if (state.gallery) add("gallery", state.gallery.message);
  box.appendChild(dl);
}

let previewDevices = { finger: null, face: null };

function render(state) {
  const badge = $("state");
  badge.textContent = state.state;
  badge.className = `badge state-${state.state}`;
  $("start").disabled = state.state === "running" || state.state === "paused";
  $("person-id").required = !!state.gallery_enabled;
  renderDevices(state.devices);
  renderFingers(state);
  renderCurrent(state);
  $("retries").textContent = state.retries;
  fill($("switches"), state.switches, (w) => el("li", `${w.kind}: ${w.from} → ${w.to}${w.reason ? ` (${w.reason})` : ""}`), "none");
  fill($("exceptions"), Object.entries(state.exceptions), ([k, v]) => el("li", `${k}: ${v}`), "none");
  renderFace(state.face);
  renderSummary(state);
  const events = state.events.slice(-EVENTS_SHOWN).reverse();
  fill($("events"), events, (e) => el("li", `${e.time.slice(11, 19)} ${e.text}`, e.level), "no events yet");
  for (const kind of ["Finger", "Face"]) {
    const ofKind = state.devices.filter((d) => d.kind === kind);
    const chosen = ofKind.find((d) => d.active) || ofKind.find((d) => d.state === "Ready") || ofKind[0];
    previewDevices[kind === "Finger" ? "finger" : "face"] = chosen ? chosen.id : null;
  }
}

async function pollState() {
  try {
    render(await api("/api/state"));
    if ($("message").dataset.source === "poll") { $("message").textContent = ""; }
  } catch (error) {
    $("message").textContent = `Station unreachable: ${error.message}`;
    $("message").dataset.source = "poll";
  }
  setTimeout(pollState, STATE_EVERY_MS);
}

function pollPreview(which) {
  const img = $(`preview-${which}`);
  const device = previewDevices[which];
  const frame = img.parentElement;
  if (!device) { frame.classList.remove("live"); setTimeout(() => pollPreview(which), PREVIEW_EVERY_MS); return; }
  $(`preview-${which}-caption`).textContent = device;
  const next = new Image();
  next.onload = () => {
    next.id = img.id;  // swap in the loaded frame: no flicker, no second fetch
    next.alt = img.alt;
    img.replaceWith(next);
    frame.classList.add("live");
    setTimeout(() => pollPreview(which), PREVIEW_EVERY_MS);
  };
  next.onerror = () => { frame.classList.remove("live"); setTimeout(() => pollPreview(which), PREVIEW_EVERY_MS); };
  next.src = `/api/preview?device=${encodeURIComponent(device)}&t=${Date.now()}`;
}

async function startSession(event) {
  event.preventDefault();
  const personId = $("person-id").value.trim();
  const message = $("message");
  message.dataset.source = "start";
  message.textContent = "";
  try {
    await api("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(personId ? { person_id: personId } : {}),
    });
  } catch (error) {
    message.textContent = `Could not start: ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("start-form").addEventListener("submit", startSession);
  pollState();
  pollPreview("finger");
  pollPreview("face");
});
