// The playground's page: plain DOM, fetch and EventSource; no framework, nothing fetched from elsewhere.
"use strict";

const BASE = document.body.dataset.base;
const state = { routes: [], requests: new Map(), ticked: [], open: null };

function $(sel, root) { return (root || document).querySelector(sel); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (opts.method && opts.method !== "GET") opts.headers["X-Gati-Playground"] = "1";  // access.py: changes need it
  if (opts.json !== undefined) { opts.body = JSON.stringify(opts.json); opts.headers["Content-Type"] = "application/json"; }
  const resp = await fetch(BASE + "/api" + path, opts);
  const body = await resp.json();
  if (!resp.ok) {
    const e = body.error || {};
    showError(`${e.message || resp.status}${e.fix ? " (" + e.fix + ")" : ""}`);
    throw new Error(e.message || String(resp.status));
  }
  return body;
}

function showError(text) {
  const box = $("#error");
  box.textContent = text;
  box.classList.remove("hidden");
  setTimeout(() => box.classList.add("hidden"), 8000);
}

function pretty(v) { return typeof v === "string" ? v : JSON.stringify(v, null, 2); }

// tabs -----------------------------------------------------------------------------------

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => show(tab.dataset.view));
}

function show(view) {
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.dataset.view === view);
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== "view-" + view);
  if (view === "routes") loadRoutes();
  if (view === "modules") loadModules();
  if (view === "gates") loadGates();
}

// requests -------------------------------------------------------------------------------

function addRequest(s, atTop) {
  state.requests.set(s.id, s);
  const old = document.querySelector(`#request-list li[data-id="${s.id}"]`);
  if (old) old.remove();
  const tick = el("input", { type: "checkbox", class: "tick", onchange: (e) => onTick(s.id, e.target.checked) });
  const item = el("li", { "data-id": s.id, class: s.status >= 400 ? "failed" : "" },
    tick,
    el("span", { class: "method" }, s.method),
    el("span", { class: "path", onclick: () => openRequest(s.id) }, s.path),
    el("span", { class: "status" }, s.status),
    el("span", { class: "version" }, s.version ? "v" + s.version : ""),
    el("span", { class: "ms" }, s.duration_ms.toFixed(1) + " ms"),
    s.replay_of ? el("span", { class: "replay" }, "replay") : "");
  const list = $("#request-list");
  if (atTop) list.prepend(item); else list.append(item);
}

function onTick(id, on) {
  state.ticked = state.ticked.filter((x) => x !== id);
  if (on) state.ticked.push(id);
  while (state.ticked.length > 2) {
    const dropped = state.ticked.shift();
    const box = document.querySelector(`#request-list li[data-id="${dropped}"] .tick`);
    if (box) box.checked = false;
  }
  $("#diff-selected").disabled = state.ticked.length !== 2;
}

$("#diff-selected").addEventListener("click", () => openDiff(state.ticked[0], state.ticked[1]));

async function loadRequests() {
  const list = await api("/requests");
  $("#request-list").replaceChildren();
  for (const s of list) addRequest(s, false);
}

function timelineTable(rows) {
  const total = Math.max(1, ...rows.map((r) => r.start_ms + r.duration_ms));
  return el("table", { class: "timeline" },
    el("tr", {}, el("th", {}, "what"), el("th", {}, "start"), el("th", {}, "ms"), el("th", {}, "outcome"), el("th", { class: "barcol" }, "")),
    rows.map((r) => el("tr", { class: "row-" + r.kind + " outcome-" + r.outcome, "data-label": r.label },
      el("td", { class: "label", title: pretty(r.detail) }, r.label),
      el("td", {}, r.start_ms.toFixed(1)),
      el("td", {}, r.duration_ms ? r.duration_ms.toFixed(1) : ""),
      el("td", {}, r.outcome),
      el("td", { class: "barcol" }, el("div", { class: "bar", style: `margin-left:${(100 * r.start_ms) / total}%;width:${Math.max(0.5, (100 * r.duration_ms) / total)}%` })))));
}

function section(title, ...body) { return el("details", { open: "" }, el("summary", {}, title), ...body); }

function versionsOf(route) {
  const r = state.routes.find((x) => x.route === route);
  return r ? r.versions : [];
}

async function openRequest(id) {
  state.open = id;
  if (!state.routes.length) await loadRoutes();
  const { snapshot: s, timeline } = await api("/requests/" + encodeURIComponent(id));
  const versions = el("select", { id: "replay-version" }, versionsOf(s.route).map((v) => el("option", { value: v }, v || "(current)")));
  versions.value = s.version;
  const mode = el("select", { id: "replay-mode" }, el("option", { value: "real" }, "modules real"), el("option", { value: "recorded" }, "modules answered from the recording"));
  const extra = el("input", { id: "replay-headers", placeholder: '{"Authorization": "Bearer ..."} (redacted headers are not stored)' });
  const replayBtn = el("button", { id: "replay-btn", onclick: () => doReplay(s.id, versions.value, mode.value, extra.value) }, "Replay");
  $("#detail").replaceChildren(
    el("h2", {}, `${s.method} ${s.path}${s.query ? "?" + s.query : ""}`),
    el("p", { class: "meta" }, `request ${s.id} · route ${s.route} · ${s.handler} · version ${s.version || "-"} · ${s.status} · ${s.duration_ms} ms`,
      s.replay_of ? ` · replay (${s.replay_mode}) of ${s.replay_of}` : ""),
    el("div", { class: "replay-bar" }, "Replay against version ", versions, " with ", mode, extra, replayBtn),
    section("Timeline", timelineTable(timeline)),
    section("Answer", el("pre", { id: "answer" }, `${s.answer.status}\n${s.answer.body === null ? "" : s.answer.body}`)),
    section("Module calls", el("pre", {}, pretty(s.calls))),
    section("lctx state", el("pre", {}, pretty(s.lctx.state))),
    section("Request headers", el("pre", {}, s.headers.map(([k, v]) => `${k}: ${v}`).join("\n"))),
    section("Request body" + (s.body_truncated ? ` (cut: ${s.body_size} bytes sent)` : ""), el("pre", {}, s.body === null ? "(not read by the handler)" : s.body)));
  for (const li of document.querySelectorAll("#request-list li")) li.classList.toggle("open", li.dataset.id === id);
}

async function doReplay(id, version, mode, extra) {
  let headers = {};
  if (extra.trim()) {
    try { headers = JSON.parse(extra); } catch (e) { showError("extra headers: not JSON"); return; }
  }
  const out = await api("/replay", { method: "POST", json: { id, version, mode, headers } });
  await openDiff(id, out.id);
}

function sideBySide(rows, render) {
  return el("table", { class: "side" }, rows.map((r) => el("tr", { class: r.same ? "same" : "differs" },
    el("td", {}, r.a ? render(r.a) : ""), el("td", {}, r.b ? render(r.b) : ""))));
}

async function openDiff(a, b) {
  const d = await api(`/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);
  const head = (x) => `${x.id} · version ${x.version || "-"} · ${x.status} · ${x.duration_ms} ms${x.replay_of ? " · replay (" + x.replay_mode + ")" : ""}`;
  $("#detail").replaceChildren(el("div", { id: "diff" },
    el("h2", {}, "Diff"),
    el("p", { id: "diff-verdict", class: d.answer.same ? "same" : "differs" }, d.answer.same ? "same answer" : "the answers differ"),
    el("table", { class: "side" }, el("tr", {}, el("th", {}, head(d.a)), el("th", {}, head(d.b))),
      el("tr", {}, el("td", {}, el("pre", { class: "answer-a" }, `${d.a.status}\n${d.a.body}`)), el("td", {}, el("pre", { class: "answer-b" }, `${d.b.status}\n${d.b.body}`)))),
    d.answer.lines.length ? el("pre", { class: "udiff" }, d.answer.lines.map((l) => el("span", { class: l[0] === "+" ? "add" : l[0] === "-" ? "del" : "" }, l + "\n"))) : "",
    el("h3", {}, "Timeline"),
    sideBySide(d.timeline, (r) => `${r.label} · ${r.outcome} · ${r.duration_ms ? r.duration_ms.toFixed(1) + " ms" : ""}`),
    el("h3", {}, "Module calls"),
    sideBySide(d.calls, (c) => `${c.module}.${c.method}(${JSON.stringify(c.payload)}) → ${JSON.stringify(c.error || c.answer)} [${c.answered}]`)));
}

// routes and modules ---------------------------------------------------------------------

async function loadRoutes() {
  state.routes = await api("/routes");
  $("#routes").replaceChildren(...state.routes.map((r) => el("div", { class: "card route", "data-route": r.route },
    el("h3", {}, `${r.methods.join(" ")} ${r.route}`),
    el("p", {}, `versions: ${r.versions.map((v) => v || "(unversioned)").join(", ")}${r.graph ? " · default " + r.default : ""} · hooks: ${r.hooks.join(" → ")}`),
    ...Object.entries(r.manifests).map(([v, m]) => section(`manifest of version ${v || "-"} (${m.file})`, el("pre", {}, pretty(m)))))));
  fillGateForm();
}

async function loadModules() {
  const mods = await api("/modules");
  $("#modules").replaceChildren(...(mods.length ? mods : [null]).map((m) => m === null ? el("p", { class: "hint" }, "no modules registered") :
    el("div", { class: "card module", "data-module": m.name },
      el("h3", {}, `${m.name} ${m.version} (${m.kind}) · ${m.health}`),
      el("p", {}, "methods: " + m.methods.join(", ")),
      section("may", el("ul", {}, m.may.map((x) => el("li", {}, x)))),
      section("did", el("ul", { class: "did" }, m.did.map((x) => el("li", {}, `${x.capability} ${x.target} ×${x.count}`)))),
      section("refused", el("ul", { class: "refused" }, m.refused.map((x) => el("li", {}, `${x.capability} ${x.target}: ${x.reason} ×${x.count}`)))),
      section("capabilities and limits", el("pre", {}, pretty({ capabilities: m.capabilities, limits: m.limits }))))));
}

// gates ----------------------------------------------------------------------------------

function fillGateForm() {
  const sel = $("#gate-route");
  const keep = sel.value;
  sel.replaceChildren(...state.routes.map((r) => el("option", { value: r.route }, r.route)));
  if (keep) sel.value = keep;
  fillHooks();
}

function fillHooks() {
  const r = state.routes.find((x) => x.route === $("#gate-route").value);
  $("#gate-hook").replaceChildren(...(r ? r.hooks : []).map((h) => el("option", { value: h }, h)));
}

$("#gate-route").addEventListener("change", fillHooks);
$("#gate-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  await api("/gates", { method: "POST", json: { route: $("#gate-route").value, when: $("#gate-when").value, hook: $("#gate-hook").value } });
  await loadGates();
});

async function loadGates() {
  if (!state.routes.length) await loadRoutes();
  const g = await api("/gates");
  const shown = [...$("#gates").children].map((li) => li.dataset.gate).join();
  if (shown !== g.gates.map((x) => x.id).join()) {  // rebuilt only when the gates changed: a button under the pointer stays
    $("#gates").replaceChildren(...g.gates.map((x) => el("li", { "data-gate": x.id },
      `${x.route}: ${x.when} ${x.hook} `, el("button", { class: "remove", onclick: async () => { await api("/gates/" + x.id, { method: "DELETE" }); loadGates(); } }, "Remove"))));
  }
  // Keep the items already shown: a person may be editing one's state while another request arrives.
  const list = $("#paused");
  const ids = new Set(g.paused.map((p) => p.id));
  for (const li of [...list.children]) if (!ids.has(li.dataset.id)) li.remove();
  for (const p of g.paused) if (!list.querySelector(`li[data-id="${p.id}"]`)) list.append(pausedItem(p));
  $("#paused-count").textContent = g.paused.length ? `(${g.paused.length} waiting)` : "";
}

function pausedItem(p) {
  const text = el("textarea", { class: "state", rows: 6 }, JSON.stringify(p.state, null, 2));
  return el("li", { "data-id": p.id },
    el("p", {}, `${p.method} ${p.path} · request ${p.id} · waiting ${p.when} ${p.hook} (phase ${p.phase})`),
    text,
    el("div", {},
      el("button", { class: "save-state", onclick: async () => {
        let value;
        try { value = JSON.parse(text.value); } catch (e) { showError("lctx state: not JSON"); return; }
        await api(`/paused/${p.id}/state`, { method: "PUT", json: value });
      } }, "Save state"),
      el("button", { class: "resume", onclick: async () => { await api(`/paused/${p.id}/resume`, { method: "POST" }); loadGates(); } }, "Resume"),
      el("button", { class: "fail", onclick: async () => { await api(`/paused/${p.id}/fail`, { method: "POST", json: { status: 500 } }); loadGates(); } }, "Fail")));
}

// live -----------------------------------------------------------------------------------

function connect() {
  const source = new EventSource(BASE + "/api/events");
  source.onopen = () => { $("#live").textContent = "live"; $("#live").className = "on"; loadRequests(); };
  source.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").className = "off"; };
  source.addEventListener("request", (e) => addRequest(JSON.parse(e.data), true));
  for (const kind of ["paused", "resumed", "gates"]) source.addEventListener(kind, () => loadGates());
}

loadRoutes().catch(() => {});
connect();
