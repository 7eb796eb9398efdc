// The dashboard: poll /api/state every second and redraw the tables in place. Every text
// goes in through textContent (a pipeline's name or a dead letter's reason is data, not
// markup).
"use strict";

const PERIOD_MS = 1000;
const STAGES = ["source", "map", "shuffle", "reduce", "sink"];
document.body.dataset.loadedAt = String(Date.now()); // a reload would change it

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "style") Object.assign(node.style, value);
    else if (name.startsWith("data-")) node.dataset[name.slice(5)] = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function bar(done, total, label) {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  return el("div", {class: "bar", title: label},
    el("div", {class: "fill", style: {width: `${(share * 100).toFixed(1)}%`}}),
    el("span", {}, label));
}

function timeline(p, now) {
  const phases = p.timeline || [];
  const last = phases.length ? phases[phases.length - 1] : null;
  const span = Math.max(0.001, p.finished ? p.finished - p.submitted : now - p.submitted);
  const box = el("div", {class: "timeline", title: `${span.toFixed(1)} s`});
  for (const phase of phases) {
    const end = phase.end === null ? span : phase.end;
    box.append(el("div", {
      class: `phase ${phase.phase}${phase.end === null ? " open" : ""}${phase.cut ? " cut" : ""}`,
      title: `${phase.phase}: ${phase.start.toFixed(2)}–${phase.end === null ? "…" : end.toFixed(2)} s`,
      style: {left: `${(phase.start / span) * 100}%`,
              width: `${Math.max(0.5, ((end - phase.start) / span) * 100)}%`},
    }));
  }
  return el("div", {}, box,
    el("small", {}, `${span.toFixed(1)} s${last && last.end === null ? `, in ${last.phase}` : ""}`));
}

function pipelineRow(p, now) {
  const frames = p.frames === null ? "?" : p.frames;
  // a pipeline of several steps: the bars are the current step's
  const stages = el("div", {class: "stages"},
    ...(p.step ? [el("small", {}, `step ${p.step}/${p.steps}`)] : []),
    ...STAGES.map((s) => bar(p.stages[s][0], p.stages[s][1], `${s} ${p.stages[s][0]}/${p.stages[s][1]}`)));
  const letters = el("div", {}, String(p.errors),
    ...p.dead_letters.map((r) => el("div", {class: "reason"}, r)));
  // what the pipeline's code counted (increment_counter), a line per counter
  const counters = el("div", {class: "counters"},
    ...Object.entries(p.counters).flatMap(([group, names]) =>
      Object.entries(names).map(([name, n]) => el("div", {}, `${group}: ${name} ${n}`))));
  return el("tr", {"data-pipeline": p.id, "data-state": p.state},
    el("td", {}, el("div", {class: "id"}, p.id), el("small", {}, `${p.name} · ${bytes(p.input_bytes)} · ${p.keys} keys`), counters),
    el("td", {}, el("span", {class: `state ${p.state}`}, p.state)),
    el("td", {}, bar(p.mapped, p.frames || 0, `${p.mapped}/${frames}`)),
    el("td", {}, stages),
    el("td", {}, timeline(p, now)),
    el("td", {class: p.errors ? "warn" : ""}, letters),
    el("td", {class: "why"}, p.reason || p.waiting_on || ""));
}

// Records for the roles that see them (a mapper's input records and key groups, a reducer's
// keys and results, a sink's results); Kafka messages for the others.
function inOut(role, m) {
  if (["mapper", "reducer", "sink"].includes(role)) {
    return `${m.records_in || 0} / ${m.records_out || 0} records`;
  }
  return `${m.messages_in || 0} / ${m.messages_out || 0} messages`;
}

function workerRow(w) {
  const m = w.metrics || {};
  return el("tr", {"data-worker": w.id, class: w.silent ? "silent" : ""},
    el("td", {}, w.host), el("td", {}, w.role), el("td", {}, w.pid),
    el("td", {class: "partitions"}, w.partitions.join(", ")),
    el("td", {}, w.lag === null ? "?" : w.lag),
    el("td", {}, inOut(w.role, m)),
    el("td", {}, `${w.last_seen_s.toFixed(1)} s ago`),
    el("td", {}, w.restarts),
    el("td", {}, w.silent ? el("span", {class: "state failed"}, "SILENT") : "ok"));
}

function clusterLine(c) {
  const parts = [];
  if (c.kafka.error) parts.push(el("span", {class: "bad"}, `Kafka unreachable: ${c.kafka.error}`));
  for (const b of c.kafka.brokers) {
    parts.push(el("span", {class: b.state === "up" ? "ok" : "bad"}, `broker ${b.id ?? "?"} ${b.address} ${b.state}`));
  }
  const counts = c.kafka.partitions;
  if (counts && counts.partitions !== undefined) {
    const bad = counts.under_replicated || counts.offline;
    parts.push(el("span", {class: bad ? "bad" : "ok"},
      `${counts.partitions} partitions, ${counts.under_replicated} under-replicated, ${counts.offline} offline`));
  }
  if (c.redis.error) parts.push(el("span", {class: "bad"}, `Redis unreachable: ${c.redis.error}`));
  else parts.push(el("span", {class: "ok"}, `Redis primary ${c.redis.primary}, ${c.redis.replicas} replicas`));
  return parts;
}

function replace(tbody, rows) {
  tbody.replaceChildren(...rows);
}

async function refresh() {
  try {
    const response = await fetch("/api/state", {cache: "no-store"});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    const now = state.generated;
    replace(document.querySelector("#pipelines tbody"),
      state.pipelines.slice().reverse().map((p) => pipelineRow(p, now)));
    document.getElementById("no-pipelines").hidden = state.pipelines.length > 0;
    replace(document.querySelector("#workers tbody"), state.workers.map(workerRow));
    document.getElementById("cluster").replaceChildren(...clusterLine(state.cluster));
    document.getElementById("updated").textContent =
      `updated ${new Date(now * 1000).toLocaleTimeString()}`;
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (error) {
    document.getElementById("updated").textContent = `cannot reach the server: ${error}`;
  } finally {
    setTimeout(refresh, PERIOD_MS);
  }
}

refresh();
