// devenv dashboard: draws /api/snapshot (every 2 s), CloudWatch's series from /api/charts
// (every 5 s) and, when the address ends in #trace=<id>, that trace's waterfall from
// /api/traces/<id>. Plain DOM and SVG, no build.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COL = 175, ROW = 58, NODE_W = 146, NODE_H = 34, PAD = 24;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fill(tableId, rows) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows);
}

function row(cells, attrs = {}) {
  const tr = el("tr", attrs);
  for (const cell of cells) {
    const numeric = typeof cell === "number";
    tr.append(el("td", numeric ? { class: "num" } : {}, String(cell ?? "")));
  }
  return tr;
}

function drawGraph(graph) {
  const root = document.getElementById("graph");
  const nodes = graph.nodes || [];
  const layers = Math.max(1, ...nodes.map((n) => n.layer + 1));
  const rows = Math.max(1, ...nodes.map((n) => n.row + 1));
  const width = PAD * 2 + (layers - 1) * COL + NODE_W, height = PAD * 2 + (rows - 1) * ROW + NODE_H + 40;
  root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "8",
                                 markerHeight: "8", markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#5b6777" }));
  defs.append(marker);
  const place = {};
  for (const n of nodes) place[n.id] = { x: PAD + n.layer * COL, y: PAD + n.row * ROW };
  const edges = svg("g", { class: "edges" });
  for (const e of graph.edges || []) {
    const a = place[e.source], b = place[e.target];
    if (!a || !b) continue;
    let d, lx, ly;
    if (b.x > a.x) {  // forward: right side to left side
      const x1 = a.x + NODE_W, y1 = a.y + NODE_H / 2, x2 = b.x, y2 = b.y + NODE_H / 2, mid = (x1 + x2) / 2;
      d = `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`;
      lx = x1 + 14; ly = y1 - 5;
    } else {  // back or same column: bottom to bottom, under the nodes
      const x1 = a.x + NODE_W / 2, y1 = a.y + NODE_H, x2 = b.x + NODE_W / 2 + 10, y2 = b.y + NODE_H;
      const dip = Math.max(y1, y2) + 30 + Math.abs(a.x - b.x) / 12;
      d = `M ${x1} ${y1} C ${x1} ${dip}, ${x2} ${dip}, ${x2} ${y2}`;
      lx = (x1 + x2) / 2; ly = dip - 6;
    }
    const classes = ["edge", e.observed ? "observed" : "", e.errors ? "errors" : "", e.count ? "busy" : "idle"];
    const g = svg("g", { class: classes.filter(Boolean).join(" "), "data-edge": `${e.source}->${e.target}`,
                         "data-count": e.count, "data-errors": e.errors });
    g.append(svg("title", {}, `${e.source} → ${e.target}: ${e.count} in the window` +
                              (e.errors ? `, ${e.errors} failed` : "") + ` (${e.why})`));
    g.append(svg("path", { d, "stroke-width": (1.2 + Math.log2(1 + (e.count || 0))).toFixed(2) }));
    if (e.count) g.append(svg("text", { x: lx, y: ly, "text-anchor": "middle", class: "count" },
                               e.errors ? `${e.count} (${e.errors}✗)` : String(e.count)));
    edges.append(g);
  }
  const boxes = svg("g", { class: "nodes" });
  for (const n of nodes) {
    const p = place[n.id];
    const g = svg("g", { class: `node kind-${n.kind}`, "data-node": n.id, transform: `translate(${p.x},${p.y})` });
    g.append(svg("title", {}, `${n.kind}: ${n.label}`));
    g.append(svg("rect", { width: NODE_W, height: NODE_H }));
    const label = n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label;
    g.append(svg("text", { x: NODE_W / 2, y: NODE_H / 2 }, label));
    boxes.append(g);
  }
  root.replaceChildren(defs, edges, boxes);
}

function time(epoch) {
  return new Date(epoch * 1000).toLocaleTimeString();
}

function draw(snap) {
  document.getElementById("stack").textContent = snap.stack;
  const phase = document.getElementById("phase");
  phase.textContent = snap.running ? (snap.phase || "running") : "not running";
  phase.className = "badge " + (snap.running ? snap.phase || "" : "stopped");
  document.getElementById("updated").textContent = "updated " + time(snap.taken_at);
  document.getElementById("window").textContent = `(traffic of the last ${Math.round(snap.window / 60)} min)`;
  document.getElementById("notes").replaceChildren(...snap.notes.map((n) => el("li", {}, n)));
  drawGraph(snap.graph);
  fill("traces", snap.traces.map((t) => {
    const tr = row([t.trace, time(t.start), Number(t.ms.toFixed(1)), t.spans, t.errors, t.first],
                   { class: "trace" + (t.errors ? " error" : ""), "data-trace": t.trace });
    tr.addEventListener("click", () => { location.hash = "trace=" + t.trace; });
    return tr;
  }));
  fill("components", snap.components.map((c) => row([c.name, c.state, c.address, c.restarts, c.note],
                                                    c.state === "failed" ? { class: "error" } : {})));
  fill("services", snap.services.map((s) => row([s.name, s.desired, s.running, s.healthy, s.rollout, s.capacity],
                                                s.healthy < s.desired ? { class: "error" } : {})));
  fill("queues", snap.queues.map((q) => row(
    [q.name, q.visible, q.in_flight, q.is_dlq ? "DLQ of " + q.sources.join(", ") : (q.dlq || ""),
     q.dlq_depth ?? ""], (q.is_dlq && q.visible) || q.dlq_depth ? { class: "error" } : {})));
}

async function refresh() {
  try {
    const response = await fetch("/api/snapshot", { cache: "no-store" });
    draw(await response.json());
    document.body.dataset.loaded = "1";
  } catch (error) {
    document.getElementById("updated").textContent = "dashboard server unreachable: " + error;
  } finally {
    setTimeout(refresh, 2000);  // the next one after this one ends: a slow snapshot never piles up requests
  }
}

const CHART_W = 320, CHART_H = 130, CHART_PAD = { left: 34, right: 8, top: 8, bottom: 18 };
const COLOURS = ["#1565c0", "#e07b00", "#c62828", "#2e7d32"];

function number(v) {  // whole above 100, else 3 significant digits (a latency in seconds stays readable)
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : String(Number(v.toPrecision(3)));
}

// One chart: a line per series over [start, end], the target as a dashed line. Each line
// carries its plotted values (data-values), which is what the browser test reads.
function drawChart(chart, start, end) {
  const box = el("figure", { class: "chart", "data-chart": chart.id });
  box.append(el("figcaption", {}, `${chart.title} (${chart.unit})`));
  const values = chart.series.flatMap((s) => s.points.map((p) => p[1]));
  if (chart.target !== null) values.push(chart.target);
  const top = (Math.max(0, ...values) || 1) * 1.1;  // a chart of values below 1 (seconds) uses its height
  const w = CHART_W - CHART_PAD.left - CHART_PAD.right, h = CHART_H - CHART_PAD.top - CHART_PAD.bottom;
  const x = (t) => CHART_PAD.left + ((t - start) / Math.max(1, end - start)) * w;
  const y = (v) => CHART_PAD.top + h - (v / top) * h;
  const plot = svg("svg", { viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: "img", "aria-label": chart.title });
  plot.append(svg("line", { x1: CHART_PAD.left, y1: y(0), x2: CHART_W - CHART_PAD.right, y2: y(0), class: "axis" }));
  plot.append(svg("text", { x: CHART_PAD.left - 4, y: y(top / 1.1), class: "tick", "text-anchor": "end" },
                  number(top / 1.1)));
  plot.append(svg("text", { x: CHART_PAD.left - 4, y: y(0), class: "tick", "text-anchor": "end" }, "0"));
  plot.append(svg("text", { x: CHART_PAD.left, y: CHART_H - 4, class: "tick" }, time(start)));
  plot.append(svg("text", { x: CHART_W - CHART_PAD.right, y: CHART_H - 4, class: "tick", "text-anchor": "end" },
                  time(end)));
  if (chart.target !== null) {
    const line = svg("line", { x1: CHART_PAD.left, y1: y(chart.target), x2: CHART_W - CHART_PAD.right,
                               y2: y(chart.target), class: "target", "data-target": chart.target });
    line.append(svg("title", {}, `target ${chart.target}`));
    plot.append(line);
  }
  const legend = el("div", { class: "chart-legend" });
  chart.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    const points = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const line = svg("polyline", { points, stroke: colour, class: "series", "data-series": s.label,
                                   "data-values": s.points.map((p) => p[1]).join(",") });
    line.append(svg("title", {}, s.metric));
    plot.append(line);
    const last = s.points.length ? number(s.points[s.points.length - 1][1]) : "no data";
    legend.append(el("span", { style: `color:${colour}` }, `— ${s.label}: ${last}  `));
  });
  box.append(plot, legend);
  return box;
}

async function refreshCharts() {
  try {
    const response = await fetch("/api/charts?minutes=15", { cache: "no-store" });
    const view = await response.json();
    const note = document.getElementById("charts-note");
    note.hidden = !view.note;
    note.textContent = view.note || "";
    document.getElementById("charts-window").textContent =
      `(CloudWatch, last ${Math.round((view.end - view.start) / 60)} min, ${view.period} s points)`;
    document.getElementById("charts").replaceChildren(...view.charts.map((c) => drawChart(c, view.start, view.end)));
    document.body.dataset.charts = "1";
  } catch (error) {
    document.getElementById("charts-window").textContent = "charts unavailable: " + error;
  } finally {
    setTimeout(refreshCharts, 5000);
  }
}

async function showTrace() {
  const panel = document.getElementById("waterfall");
  const match = location.hash.match(/^#trace=(.+)$/);
  if (!match) { panel.hidden = true; return; }
  const id = decodeURIComponent(match[1]);
  const response = await fetch("/api/traces/" + encodeURIComponent(id), { cache: "no-store" });
  panel.hidden = false;
  document.getElementById("wf-id").textContent = id;
  const rows = document.getElementById("wf-rows");
  if (!response.ok) {
    document.getElementById("wf-summary").textContent = "not found";
    rows.replaceChildren();
    return;
  }
  const trace = await response.json();
  document.getElementById("wf-summary").textContent =
    `${trace.rows.length} spans · ${trace.ms.toFixed(1)} ms` + (trace.errors ? ` · ${trace.errors} failed` : "");
  rows.replaceChildren(...trace.rows.map((r) => {
    const line = el("div", { class: "wf-row" + (r.outcome === "ok" ? "" : " error"), "data-span": r.id });
    const label = el("div", { class: "wf-label", style: `padding-left:${r.depth * 14}px` },
                     `${r.component} ${r.op}`);
    const track = el("div", { class: "wf-track" });
    track.append(el("div", { class: "wf-bar", style: `left:${(r.start * 100).toFixed(3)}%;` +
                                                      `width:${Math.max(r.width * 100, 0.4).toFixed(3)}%` }));
    const ms = el("div", { class: "wf-ms" }, `+${r.offset_ms.toFixed(1)} · ${r.ms.toFixed(1)} ms`);
    const details = el("div", { class: "wf-details" }, r.details.map(([k, v]) => `${k}=${v}`).join("  "));
    line.append(label, track, ms, details);
    return line;
  }));
  panel.scrollIntoView({ block: "nearest" });
}

document.getElementById("wf-close").addEventListener("click", () => { location.hash = ""; });
window.addEventListener("hashchange", showTrace);
refresh();
refreshCharts();
showTrace();
