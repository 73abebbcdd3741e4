# ruff: noqa: E501 - the page's script and style are JavaScript and CSS, not Python
"""The dashboard's page, script and style: no library, nothing loaded from elsewhere.

Everything from a run is put into the page with ``textContent`` or SVG attributes, never as
HTML, so a genotype or an error message cannot inject markup.
"""

PAGE_HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hwnas dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>hwnas dashboard</h1>
  <label id="run-choice" hidden>run <select id="run-select"></select></label>
  <span id="status" class="note">loading…</span>
</header>
<section id="summary"></section>
<div class="row">
  <section><h2>Trials and Pareto front</h2><div id="front-plot" class="plot"></div></section>
  <section><h2>Hypervolume over evaluations</h2><div id="hv-plot" class="plot"></div>
    <h2>Best model under a budget</h2>
    <form id="picker">
      <label>metric <select id="pick-metric"></select></label>
      <label>at most <input id="pick-max" type="number" step="any" required></label>
      <span id="pick-unit" class="note"></span>
      <button type="submit">pick</button>
    </form>
    <div id="pick-result" class="note">Choose a budget.</div>
  </section>
</div>
<section><h2>Trials <span class="note">(newest first)</span></h2>
<table id="trials"><thead></thead><tbody></tbody></table></section>
</body>
</html>
"""

APP_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
header { display: flex; gap: 1.2em; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.4em; margin: 0.3em 0; } h2 { font-size: 1.05em; margin: 0.8em 0 0.3em; }
.row { display: flex; gap: 1.5em; flex-wrap: wrap; } .row > section { flex: 1 1 560px; }
.note { color: #666; font-size: 0.92em; }
.plot svg { width: 100%; height: auto; border: 1px solid #eee; background: #fff; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { font: 11px ui-monospace, monospace; word-break: break-all; }
tr.front td { background: #fdebd9; } tr.knee td { background: #fff3b0; }
tr.fresh td:first-child { box-shadow: inset 4px 0 #2ca02c; }
.failed { color: #c62828; } .running { color: #1f77b4; font-weight: 600; } .queued { color: #888; }
#summary span { margin-right: 1.4em; } #summary b { font-variant-numeric: tabular-nums; }
#pick-result { margin-top: 0.4em; } #pick-result b { color: #222; }
form label { margin-right: 0.8em; } input { width: 7em; }
"""

APP_JS = r"""
"use strict";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let runs = [], current = 0, pollMs = 2000, data = null, seen = null, timer = null;

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || String(response.status));
  return body;
}

function el(tag, attrs, text) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// Numbers people read: 325 k and 1.2 M for counts, 3 significant digits otherwise.
function fmt(value, unit) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  const a = Math.abs(value);
  let text;
  if ((unit === "count" || unit === "" || unit === undefined) && a >= 1000) {
    text = a >= 1e9 ? (value / 1e9).toPrecision(3) + " G" : a >= 1e6
      ? (value / 1e6).toPrecision(3) + " M" : (value / 1e3).toPrecision(3) + " k";
  } else {
    text = Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  }
  return unit && unit !== "count" ? text + " " + unit : text;
}

// Linear or (positive values spanning two decades) log scale, with round tick values.
function scale(values, size, reverse, fromZero) {
  const v = values.filter(Number.isFinite);
  let lo = Math.min(...v), hi = Math.max(...v);
  const log = v.length > 0 && lo > 0 && hi / lo >= 100;
  const f = log ? Math.log10 : (x) => x;
  lo = f(lo); hi = f(hi);
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  const pad = (hi - lo) * 0.06;
  lo = fromZero && lo === 0 ? 0 : lo - pad; hi += pad;
  const map = (x) => { const t = (f(x) - lo) / (hi - lo); return reverse ? size * (1 - t) : size * t; };
  const ticks = [];
  if (log) {
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
      for (const m of [1, 2, 5]) { const t = m * 10 ** e; if (Math.log10(t) >= lo && Math.log10(t) <= hi) ticks.push(t); }
  } else {
    const raw = (hi - lo) / 5, p = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9 * step; t += step)
      ticks.push(Number(t.toPrecision(12)));
  }
  return { map, ticks, log };
}

function axes(svg, sx, sy, w, h, m, xlabel, ylabel, ux, uy) {
  const g = el("svg:g", { transform: `translate(${m.l},${m.t})` });
  g.append(el("svg:rect", { width: w, height: h, fill: "none", stroke: "#999" }));
  for (const t of sx.ticks) {
    const x = sx.map(t);
    g.append(el("svg:line", { x1: x, x2: x, y1: 0, y2: h, stroke: "#eee" }));
    g.append(el("svg:text", { x, y: h + 15, "text-anchor": "middle", "font-size": 11 }, fmt(t, ux)));
  }
  for (const t of sy.ticks) {
    const y = sy.map(t);
    g.append(el("svg:line", { x1: 0, x2: w, y1: y, y2: y, stroke: "#eee" }));
    g.append(el("svg:text", { x: -5, y: y + 4, "text-anchor": "end", "font-size": 11 }, fmt(t, uy)));
  }
  g.append(el("svg:text", { x: w / 2, y: h + 32, "text-anchor": "middle", "font-size": 12 }, xlabel));
  g.append(el("svg:text", { transform: `translate(${-m.l + 14},${h / 2}) rotate(-90)`,
    "text-anchor": "middle", "font-size": 12 }, ylabel));
  svg.append(g);
  return g;
}

function label(o) {
  return `${o.metric}${o.unit ? " (" + o.unit + ")" : ""} ${o.direction === "max" ? "↑" : "↓"}`;
}

function drawFront(d) {
  const box = $("front-plot"); box.replaceChildren();
  if (d.objectives.length < 2) { box.textContent = "One objective: no front to draw."; return; }
  const [ox, oy] = d.objectives;
  const W = 640, H = 420, m = { l: 70, r: 15, t: 12, b: 42 }, w = W - m.l - m.r, h = H - m.t - m.b;
  const pts = d.points.concat(d.front);
  const sx = scale(pts.map((p) => p.values[ox.metric]), w, false);
  const sy = scale(pts.map((p) => p.values[oy.metric]), h, true);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const g = axes(svg, sx, sy, w, h, m, label(ox), label(oy), ox.unit, oy.unit);
  const at = (p) => [sx.map(p.values[ox.metric]), sy.map(p.values[oy.metric])];
  for (const p of d.points) {
    const [x, y] = at(p);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const c = el("svg:circle", { cx: x, cy: y, r: 2.6, fill: p.feasible ? "#3182bd" : "#aaa",
      "fill-opacity": 0.5, "data-trial": p.number });
    c.append(el("svg:title", {}, `trial ${p.number}`));
    g.append(c);
  }
  const front = d.front.map(at).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  // With more objectives the members are not a staircase in this projection: points only.
  if (front.length && d.objectives.length === 2) {
    // Best first along x (as in the static plots): each step goes across, then to the point.
    const seq = front.slice().sort((a, b) => (ox.direction === "max" ? b[0] - a[0] : a[0] - b[0]));
    let path = "";
    seq.forEach(([x, y], i) => {
      if (i === 0) { path += `M${x},${y}`; return; }
      path += ` L${x},${seq[i - 1][1]} L${x},${y}`;
    });
    g.append(el("svg:path", { d: path, fill: "none", stroke: "#e6550d", "stroke-width": 1.5 }));
  }
  for (const t of d.front) {
    const [x, y] = at(t);
    if (!Number.isFinite(x) || !Number.isFinite(y)) continue;
    const c = el("svg:circle", { cx: x, cy: y, r: 5, fill: "#e6550d", stroke: "#000",
      "stroke-width": 0.6, "data-trial": t.number, class: "front-member" });
    c.append(el("svg:title", {}, `trial ${t.number}: ${fmt(t.values[ox.metric], ox.unit)}, ` +
      `${fmt(t.values[oy.metric], oy.unit)}`));
    g.append(c);
    if (t.number === d.knee) {
      const s = el("svg:text", { x, y: y + 6, "text-anchor": "middle", "font-size": 22,
        fill: "#ffd92f", stroke: "#000", "stroke-width": 0.7 }, "★");
      g.append(s);
      const right = x < w / 2;
      g.append(el("svg:text", { x: x + (right ? 12 : -12), y: y - 10, "font-size": 12,
        "text-anchor": right ? "start" : "end" }, `knee: trial ${t.number}`));
    }
  }
  box.append(svg);
  if (d.objectives.length > 2) {
    box.append(el("div", { class: "note" }, `Front members of all ${d.objectives.length} ` +
      `objectives, shown on the first two: a member can look dominated here.`));
  }
}

function drawHV(d) {
  const box = $("hv-plot"); box.replaceChildren();
  if (!d.hv_trace.length) { box.textContent = "No finished trial yet."; return; }
  const W = 640, H = 240, m = { l: 60, r: 15, t: 10, b: 42 }, w = W - m.l - m.r, h = H - m.t - m.b;
  const xs = d.hv_trace.map((p) => p[0]), ys = d.hv_trace.map((p) => p[1]);
  const sx = scale([0, ...xs], w, false, true);
  const sy = scale([0, ...ys], h, true, true);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const g = axes(svg, sx, sy, w, h, m, "evaluations (in order of completion)",
    "normalised hypervolume ↑", "", "");
  let path = "";
  d.hv_trace.forEach(([x, y], i) => {
    path += i === 0 ? `M${sx.map(x)},${sy.map(y)}` : ` H${sx.map(x)} V${sy.map(y)}`;
  });
  g.append(el("svg:path", { d: path, fill: "none", stroke: "#e6550d", "stroke-width": 1.6 }));
  box.append(svg);
}

function drawSummary(d) {
  const c = d.counts, s = $("summary"); s.replaceChildren();
  const item = (k, v) => { const span = el("span", {}, k + " "); span.append(el("b", {}, v)); s.append(span); };
  item("run", d.label);
  item("strategy", d.strategy);
  item("evaluated", `${c.complete + c.failed}${d.budget ? " of " + d.budget : ""}`);
  item("failed", c.failed);
  item("running", c.running);
  item("queued", c.queued);
  item("front", c.front);
  item("normalised hypervolume", d.hypervolume.toFixed(4));
  if (d.knee !== null) item("knee", "trial " + d.knee);
  if (d.constraints.length) item("constraints", d.constraints.join(", "));
}

function drawTrials(d) {
  const table = $("trials");
  const head = el("tr");
  const cols = ["trial", "state", ...d.objectives.map(label), "seconds", "genotype"];
  for (const c of cols) head.append(el("th", {}, c));
  table.tHead.replaceChildren(head);
  const front = new Set(d.front.map((t) => t.number));
  const rows = d.trials.map((t) => {
    const css = [t.number === d.knee ? "knee" : front.has(t.number) ? "front" : "",
      seen && !seen.has(t.number) ? "fresh" : ""].filter(Boolean).join(" ");
    const tr = el("tr", { id: "trial-" + t.number, "data-trial": t.number, "data-state": t.state,
      class: css });
    tr.append(el("td", { class: "num" }, t.number));
    tr.append(el("td", { class: t.state }, t.state + (t.state === "complete" && !t.feasible
      ? " (infeasible)" : "")));
    for (const o of d.objectives) tr.append(el("td", { class: "num" }, fmt(t.values[o.metric], o.unit)));
    tr.append(el("td", { class: "num" }, t.duration === null ? "–" : t.duration.toFixed(2)));
    const g = el("td"); g.append(el("code", {}, t.genotype));
    if (t.error) { g.append(el("div", { class: "failed" }, t.error)); }
    tr.append(g);
    return tr;
  });
  table.tBodies[0].replaceChildren(...rows);
  seen = new Set(d.trials.map((t) => t.number));
}

function fillPicker(d) {
  const select = $("pick-metric");
  const names = d.budget_metrics;
  if ([...select.options].map((o) => o.value).join() !== names.join()) {
    const keep = select.value;
    select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    const preferred = names.find((n) => /lat/.test(n)) || names[0];
    select.value = names.includes(keep) ? keep : preferred || "";
  }
  const input = $("pick-max");
  $("pick-unit").textContent = d.units[select.value] || "";
  if (input.value === "" && d.front.length && select.value) {
    const vs = d.front.map((t) => t.values[select.value]).filter(Number.isFinite).sort((a, b) => a - b);
    if (vs.length) input.value = String(Number(vs[Math.floor(vs.length / 2)].toPrecision(3)));
  }
}

async function pickBest(event) {
  if (event) event.preventDefault();
  const metric = $("pick-metric").value, max = $("pick-max").value;
  const out = $("pick-result");
  if (!metric || max === "") return;
  try {
    const r = await getJSON(`/api/pick?run=${current}&metric=${encodeURIComponent(metric)}&max=${encodeURIComponent(max)}`);
    out.replaceChildren();
    if (r.trial === null) { out.textContent = `No feasible trial has ${metric} ≤ ${max}.`; return; }
    const t = r.trial;
    const head = el("div"); head.append(el("b", {}, `trial ${t.number}`));
    const values = data.objectives.map((o) => `${o.metric} ${fmt(t.values[o.metric], o.unit)}`);
    if (!data.objectives.some((o) => o.metric === metric))
      values.push(`${metric} ${fmt(t.values[metric], data.units[metric])}`);
    head.append(document.createTextNode(`: ${values.join(", ")}; best ${r.quality} of ` +
      `${r.candidates} feasible trials within the budget${r.on_front ? ", on the front" : ""}`));
    out.append(head, el("code", {}, t.genotype));
    out.className = "";
  } catch (err) { out.textContent = "pick failed: " + err.message; }
}

async function refresh() {
  clearTimeout(timer);
  try {
    data = await getJSON(`/api/run?run=${current}`);
    drawSummary(data); drawFront(data); drawHV(data); drawTrials(data); fillPicker(data);
    $("status").textContent = `updated ${new Date().toLocaleTimeString()}, every ${pollMs / 1000} s`;
    document.body.dataset.trials = String(data.counts.trials);
  } catch (err) {
    $("status").textContent = "cannot read the run: " + err.message + " (retrying)";
  }
  timer = setTimeout(refresh, pollMs);
}

async function start() {
  const r = await getJSON("/api/runs");
  runs = r.runs; pollMs = r.poll_ms;
  const select = $("run-select");
  select.replaceChildren(...runs.map((run) => el("option", { value: run.index }, run.label)));
  $("run-choice").hidden = runs.length < 2;
  select.addEventListener("change", () => { current = Number(select.value); seen = null;
    $("pick-max").value = ""; refresh(); });
  $("picker").addEventListener("submit", pickBest);
  $("pick-metric").addEventListener("change", () => { $("pick-max").value = ""; fillPicker(data); pickBest(); });
  await refresh();
  pickBest();
}

start().catch((err) => { $("status").textContent = "cannot start: " + err.message; });
"""
