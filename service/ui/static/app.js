/* The page: a login form, then three views (studies, a study, a trial) routed by the URL's
   hash. It holds no data: everything is read from the coordinator's API with the user token
   kept in session storage. Data is written with textContent only, never as HTML. */
"use strict";

const API = "/api/v1";
const KEY = "aelle-user-token";
const POLL_MS = 2000;       // a study's view: its summary, and the running trials when it moved
const SLOW_POLL_MS = 10000; // what changes rarely: the plane, the models, the studies list

const $ = id => document.getElementById(id);
let timer = null, route = null, shown = null;

class Refused extends Error {}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(KEY);
  if (!token) throw new Refused("log in first");
  const r = await fetch(API + path, {...options,
    headers: {Authorization: `Bearer ${token}`, ...(options.headers || {})}});
  if (r.status === 401) {
    sessionStorage.removeItem(KEY);
    throw new Refused("the coordinator refused this token");
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${r.status}: ${typeof body.detail === "string" ? body.detail : r.statusText}`);
  return body;
}

// The API wants the token in a header, which a plain link cannot send: fetch, then save.
async function download(path, name) {
  const r = await fetch(API + path, {headers: {Authorization: `Bearer ${sessionStorage.getItem(KEY)}`}});
  if (!r.ok) { say(`download refused: ${r.status}`); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = el("a", null, {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

// The stored report is a whole page: shown in a sandboxed frame (no script, an opaque origin),
// fetched with the token like a download.
async function showReport(path) {
  const r = await fetch(API + path, {headers: {Authorization: `Bearer ${sessionStorage.getItem(KEY)}`}});
  if (!r.ok) { say(`explain report refused: ${r.status}`); return; }
  const frame = el("iframe", null, {sandbox: "", title: "Explain report", class: "report"});
  frame.srcdoc = await r.text();
  const box = $("trial-explain");
  box.textContent = "";
  box.append(frame);
  box.hidden = false;
}

function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const num = (v, digits = 4) => v == null ? "–" : Number(v).toPrecision(digits);
const signed = v => v == null ? "–" : (v >= 0 ? "+" : "") + Number(v).toFixed(3);
const enc = encodeURIComponent;

// a named measure in the browser's performance timeline (bench/ui_weight.py reads them)
function timed(label, fn) {
  const start = performance.now();
  try { return fn(); } finally { performance.measure(`aelle:${label}`, {start}); }
}

function say(text) { $("status").textContent = text; }

function show(id) {
  for (const s of ["login", "studies", "study", "trial"]) $(s).hidden = s !== id;
  $("logout").hidden = id === "login";
  if (shown !== id) { shown = id; $("main").focus({preventScroll: true}); }
}

function crumbs(parts) {
  const nav = $("crumbs");
  nav.textContent = "";
  parts.forEach(([label, href], i) => {
    if (i) nav.append(" › ");
    nav.append(href ? el("a", label, {href}) : el("span", label, {"aria-current": "page"}));
  });
}

function poll(fn, ms) {
  clearTimeout(timer);
  const mine = route;
  const tick = async () => {
    if (mine !== route) return;
    if (!document.hidden) {
      try { await fn(); } catch (e) { return fail(e); }
    }
    if (mine === route) timer = setTimeout(tick, ms);
  };
  return tick();
}

function fail(e) {
  if (e instanceof Refused) { login(e.message); return; }
  say(`Could not load: ${e.message}`);
}

function counts(c) {
  const order = ["running", "waiting", "complete", "pruned", "diverged", "failed"];
  return order.filter(s => c[s]).map(s => `${c[s]} ${s}`).join(", ") || "no trials yet";
}

function saved(s) {
  const total = s.epochs_trained + s.epochs_saved;
  if (!total) return "–";
  return `${s.epochs_saved} epochs (${Math.round(100 * s.epochs_saved / total)}%)`;
}

// the budget that binds: epochs where the study has an epoch budget
function progress(s) {
  const wrap = el("span", null, {class: "progress"});
  const epochs = s.budget_epochs !== null && s.budget_epochs !== undefined;
  const [used, total, unit] = epochs ? [s.epochs_used, s.budget_epochs, "epochs"]
                                     : [s.used, s.budget, "trials"];
  const bar = el("progress", null, {max: String(total), value: String(Math.min(used, total)),
                                    "aria-label": `${s.name}: ${used} of ${total} ${unit}`});
  wrap.append(bar, el("span", epochs ? ` ${used}/${total} ep, ${s.used} trials`
                                     : ` ${used}/${total}`));
  return wrap;
}

// ---- login
function login(message = "") {
  route = "login";
  clearTimeout(timer);
  show("login");
  crumbs([]);
  $("login-error").textContent = message;
  $("token").focus();
}

$("login-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const token = $("token").value.trim();
  sessionStorage.setItem(KEY, token);
  try {
    await api("/studies?limit=1");
  } catch (e) {
    $("login-error").textContent = e instanceof Refused ? "Wrong token: the coordinator refused it." : e.message;
    return;
  }
  $("token").value = "";
  if (!location.hash || location.hash === "#/login") location.hash = "#/";
  else navigate();
});

$("logout").addEventListener("click", () => { sessionStorage.removeItem(KEY); login(); });

// ---- studies
async function studiesView() {
  show("studies");
  crumbs([["Studies"]]);
  document.title = "AeLLE: studies";
  await poll(async () => {
    const got = await api("/studies");
    const body = $("studies-table").tBodies[0];
    body.textContent = "";
    for (const s of got.data) {
      const tr = el("tr");
      const name = el("td");
      name.append(el("a", s.name, {href: `#/study/${enc(s.name)}`}));
      if (s.stopped) name.append(el("span", " (stopped)", {class: "hint"}));
      const used = el("td"); used.append(progress(s));
      tr.append(name, el("td", s.task), el("td", s.pruner + (s.shadow ? " (shadow)" : "")), used,
                el("td", counts(s.counts)), el("td", s.best ? num(s.best.value) : "–"),
                el("td", saved(s)));
      body.append(tr);
    }
    say(got.count ? `${got.count} studies` : "No study yet: create one with `aelle submit`.");
  }, SLOW_POLL_MS);
}

// ---- one study
const cells = ["number", "state", "epoch", "value", "max_le", "mean_le", "prediction", "decision", "reason"];

function trialCells(t) {
  const value = t.value != null ? t.value : t.last_value;
  return [null, t.state, t.epochs ? String(t.epochs - 1) : "–", num(value), signed(t.max_le),
          signed(t.mean_le), num(t.prediction), t.decision || "–", t.reason || ""];
}

function trialRow(name, t) {
  const tr = el("tr", null, {"data-number": String(t.number), "data-state": t.state});
  const values = trialCells(t);
  cells.forEach((c, i) => {
    const td = el("td", values[i], {class: `c-${c}`});
    if (c === "number") td.append(el("a", String(t.number), {href: `#/study/${enc(name)}/trial/${t.number}`}));
    if (c === "state") td.classList.add(`s-${t.state}`);
    if (c === "reason" && t.reason) td.title = t.reason;
    tr.append(td);
  });
  return tr;
}

function updateRow(tr, t) {
  const values = trialCells(t);
  tr.dataset.state = t.state;
  cells.forEach((c, i) => {
    if (c === "number") return;
    const td = tr.children[i];
    if (td.textContent !== values[i]) td.textContent = values[i];
    if (c === "state") td.className = `c-state s-${t.state}`;
  });
}

function bestAgainstCompute(trials, minimize) {
  // finished trials in the order they finished; compute: the epochs every finished trial trained
  const done = trials.filter(t => t.finished_at).sort((a, b) => a.finished_at < b.finished_at ? -1 : 1);
  let compute = 0, best = null;
  const points = [];
  for (const t of done) {
    compute += t.epochs;
    if (t.state === "complete" && t.value != null &&
        (best == null || (minimize ? t.value < best : t.value > best))) best = t.value;
    if (best != null) points.push([compute, best]);
  }
  return points;
}

function legend() {
  const p = $("fate-legend");
  if (p.childNodes.length) return;
  p.append("Fates: ");
  for (const [fate, colour] of Object.entries(Plots.FATE)) {
    const s = el("span", fate, {class: "swatch"});
    s.style.setProperty("--c", colour);
    p.append(s, " ");
  }
  p.append(" · plane marks: ● continued or complete, ✕ pruned, ▲ diverged; colour: blue best, yellow worst");
}

async function studyView(name) {
  show("study");
  crumbs([["Studies", "#/"], [name]]);
  document.title = `AeLLE: ${name}`;
  $("study-title").textContent = name;
  const body = $("trials-table").tBodies[0];
  body.textContent = "";
  $("spectrum-trial").textContent = "";
  legend();
  const rows = new Map();
  let last = null, slowMark = null, trials = [], curves = new Map(), summary = null, slowAt = 0;
  let chosen = null;
  const minimize = () => !summary || summary.direction === "minimize";
  const stop = $("stop-study");
  stop.onclick = async () => {
    if (!confirm(`Stop study ${name}? No new trial will start; running trials finish.`)) return;
    try { summary = await api(`/studies/${enc(name)}/stop`, {method: "POST"}); drawSummary(); }
    catch (e) { fail(e); }
  };

  function drawSummary() {
    const s = summary, box = $("study-summary");
    box.textContent = "";
    const dl = el("dl");
    const add = (k, v) => { dl.append(el("dt", k)); const dd = el("dd"); v instanceof Node ? dd.append(v) : dd.append(v); dl.append(dd); };
    add("Budget used", progress(s));
    add("Trials", counts(s.counts));
    add("Best", s.best ? `${num(s.best.value)} (trial ${s.best.number})` : "–");
    add("Compute saved", saved(s));
    add("Task · pruner", `${s.task} · ${s.pruner}${s.shadow ? " (shadow)" : ""} · ${s.direction}`);
    if (s.stop_reason || s.quarantine) add("Stopped because", s.quarantine || s.stop_reason);
    box.append(dl);
    stop.disabled = s.stopped;
    stop.textContent = s.stopped ? "Stopped" : "Stop study";
  }

  async function drawSpectrum() {
    const n = $("spectrum-trial").value;
    if (n === "") return Plots.spectra($("plot-spectrum"), []);
    const t = await api(`/studies/${enc(name)}/trials/${n}`);
    timed("spectrum", () => Plots.spectra($("plot-spectrum"), t.reports));
  }
  $("spectrum-trial").onchange = () => { chosen = $("spectrum-trial").value; drawSpectrum().catch(fail); };

  function drawTrials() {
    // the plots first: sizing them reads the layout, which is cheap before the table grows
    timed("plots", () => {
      Plots.bestVsCompute($("plot-best"), bestAgainstCompute(trials, minimize()));
      Plots.learningCurves($("plot-curves"), [...curves.values()], summary.epochs_per_trial || 1);
    });
    timed("table", () => fillTable());
  }

  function fillTable() {
    const select = $("spectrum-trial");
    const rowsAdded = document.createDocumentFragment(), optionsAdded = document.createDocumentFragment();
    for (const t of trials) {
      let tr = rows.get(t.number);
      if (!tr) {
        tr = trialRow(name, t);
        rows.set(t.number, tr);
        rowsAdded.append(tr);
        optionsAdded.append(el("option", `#${t.number}`, {value: String(t.number)}));
      } else updateRow(tr, t);
    }
    body.append(rowsAdded);
    select.append(optionsAdded);
    if (chosen == null && trials.length) {
      const pick = summary.best ? summary.best.number : trials[0].number;
      select.value = chosen = String(pick);
    }
  }

  async function full() {
    const [t, c] = await Promise.all([api(`/studies/${enc(name)}/trials?order=number`),
                                      api(`/studies/${enc(name)}/curves`)]);
    trials = t.data;
    curves = new Map(c.data.map(x => [x.number, x]));
  }

  async function running() {
    // only the running trials moved: fetch them, and extend their curves by their last value
    const got = await api(`/studies/${enc(name)}/trials?order=number&state=running`);
    const byNumber = new Map(trials.map((t, i) => [t.number, i]));
    for (const t of got.data) {
      const i = byNumber.get(t.number);
      if (i == null) { trials.push(t); continue; }
      trials[i] = t;
      const c = curves.get(t.number);
      if (c && t.epochs && t.last_value != null && c.epochs[c.epochs.length - 1] !== t.epochs - 1) {
        c.epochs.push(t.epochs - 1);
        c.values.push(t.last_value);
      }
    }
  }

  async function slow() {
    const [plane, models] = await Promise.all([api(`/studies/${enc(name)}/plane`),
                                              api(`/studies/${enc(name)}/models`)]);
    $("plane-basis").textContent = plane.basis === "none" ? "" : `(${plane.basis})`;
    timed("plane", () => Plots.plane($("plot-plane"), plane.data, minimize()));
    timed("models", () => Plots.modelVersions($("plot-models"), models.data));
    slowAt = Date.now();
  }

  await poll(async () => {
    summary = await api(`/studies/${enc(name)}`);
    drawSummary();
    const mark = JSON.stringify([summary.counts, summary.epochs_trained]);
    if (mark !== last) {
      const states = last == null ? null : JSON.parse(last)[0];
      if (states == null || JSON.stringify(states) !== JSON.stringify(summary.counts)) await full();
      else await running();
      last = mark;
      drawTrials();
      await drawSpectrum();
    }
    // the plane and the models change only when the study does: asked again at most so often
    if (mark !== slowMark && Date.now() - slowAt > SLOW_POLL_MS) { slowMark = mark; await slow(); }
    say(`${trials.length} trials · updated ${new Date().toLocaleTimeString()}`);
    window.aelleRendered = window.aelleRendered || performance.now();
  }, POLL_MS);
}

// ---- one trial
async function trialView(name, number) {
  show("trial");
  crumbs([["Studies", "#/"], [name, `#/study/${enc(name)}`], [`Trial ${number}`]]);
  document.title = `AeLLE: ${name}, trial ${number}`;
  $("trial-title").textContent = `${name}: trial ${number}`;
  $("trial-explain").textContent = "";
  $("trial-explain").hidden = true;
  let seen = null;
  await poll(async () => {
    const t = await api(`/studies/${enc(name)}/trials/${number}`);
    const mark = JSON.stringify([t.state, t.reports.length, Object.keys(t.links || {})]);
    if (mark === seen) return;
    seen = mark;
    const box = $("trial-summary");
    box.textContent = "";
    const dl = el("dl");
    const add = (k, v) => dl.append(el("dt", k), el("dd", v));
    add("State", t.state);
    add("Value", num(t.value != null ? t.value : t.last_value));
    add("Epochs reported", String(t.epochs));
    add("Last prediction", num(t.prediction));
    if (t.reason) add("Why", t.reason);
    if (t.retry_of != null) add("Runs again", `trial ${t.retry_of}`);
    add("Started", t.started_at || "–");
    add("Finished", t.finished_at || "–");
    box.append(dl);
    const links = $("trial-links");
    links.textContent = "";
    for (const [label, path] of Object.entries(t.links || {})) {
      const report = label === "explain report";
      const b = el("button", report ? "Show the explain report" : `Download ${label}`, {type: "button"});
      b.addEventListener("click", () => report ? showReport(path) : download(path, `${name}-trial-${t.number}.pt`));
      links.append(b, " ");
    }
    if (!links.childNodes.length) links.append(el("span", "No artifact or explain report for this trial yet.", {class: "hint"}));
    Plots.spectra($("plot-trial-spectrum"), t.reports);
    const body = $("ftle-table").tBodies[0];
    body.textContent = "";
    for (const r of t.reports) {
      const z = r.spectrum || [];
      const sum = z.reduce((a, b) => a + b, 0);
      const tr = el("tr");
      for (const v of [String(r.epoch), num(r.value), signed(z.length ? Math.max(...z) : null),
                       signed(z.length ? sum / z.length : null), z.length ? String(z.filter(x => x > 0).length) : "–",
                       signed(z.length ? sum : null), num(r.prediction), r.decision || "–", r.model || "–",
                       r.reason || ""]) tr.append(el("td", v));
      body.append(tr);
    }
    const dl2 = $("trial-params");
    dl2.textContent = "";
    for (const [k, v] of Object.entries(t.params)) dl2.append(el("dt", k), el("dd", String(v)));
    say(`Trial ${number}: ${t.state}`);
  }, POLL_MS);
}

// ---- routing
function navigate() {
  if (!sessionStorage.getItem(KEY)) return login();
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  route = location.hash + Date.now();
  say("");
  let view;
  if (parts[0] === "study" && parts[1] && parts[2] === "trial" && /^\d+$/.test(parts[3] || "")) view = trialView(parts[1], Number(parts[3]));
  else if (parts[0] === "study" && parts[1]) view = studyView(parts[1]);
  else view = studiesView();
  view.catch(fail);
}

window.addEventListener("hashchange", navigate);
navigate();
