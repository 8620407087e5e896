// devenv dashboard: draws /api/snapshot (every 2 s) and, when the address ends in
// #trace=<id>, that trace's waterfall from /api/traces/<id>. Plain DOM and SVG, no build.
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
  fill("services", snap.services.map((s) => row([s.name, s.desired, s.running, s.healthy, s.rollout],
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
showTrace();
