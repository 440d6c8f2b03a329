// The plant floor: KPIs on top, then every machine as a tile grouped by line and
// coloured by its state. Tiles are built once and only restyled when a row changes,
// so a whole-plant update touches the DOM only where something moved.

import { store, go } from "../app.js";
import { call, el, number, age, clockTime, lineLabel, errorText } from "../util.js";

const STATES = ["ok", "warning", "anomaly", "service", "stale"];
const STATE_NAMES = { ok: "OK", warning: "Warning", anomaly: "Anomaly", service: "Due for service", stale: "Stale" };

let root = null;
let tiles = new Map(); // machine id → button
let lineStats = new Map(); // line id → element
let kpiEls = null;
let legendEls = null;
let timer = null;
let focusId = null;

function machineState(id) {
  const s = store.status.get(id);
  return s && STATES.includes(s.status) ? s.status : "unknown";
}

function tileTitle(m, s) {
  const parts = [`${m.machine_id} · ${m.description || m.machine_type}`];
  if (!s) return parts.concat("no status yet").join("\n");
  parts.push(`${STATE_NAMES[s.status] || s.status}`);
  parts.push(`${s.reporting}/${s.sensors} sensors reporting`);
  const open = s.open_critical + s.open_major + s.open_minor;
  if (open) parts.push(`${open} open anomal${open === 1 ? "y" : "ies"} (${s.open_critical} critical)`);
  if (s.warning) parts.push(`${s.warning} sensor(s) outside normal range`);
  if (s.due_in_days !== null && s.due_in_days !== undefined) parts.push(`service in ${number(s.due_in_days, 1)} days`);
  return parts.join("\n");
}

function styleTile(tile, id) {
  const state = machineState(id);
  if (tile.dataset.state !== state) {
    tile.className = `tile ${state}`;
    tile.dataset.state = state;
    tile.setAttribute("aria-label", `${id}: ${STATE_NAMES[state] || "no status"}`);
  }
}

/** The tooltip is written when it is about to be shown, not on every update. */
function describeTile(tile) {
  const id = tile.dataset.machine;
  const m = store.machines.get(id);
  if (m) tile.title = tileTitle(m, store.status.get(id));
}

function kpi(label, id) {
  const value = el("div.value", { id: `kpi-${id}` });
  const sub = el("div.sub", { id: `kpi-${id}-sub` });
  const card = el("div.card.kpi", {}, el("div.label", { text: label }), value, sub);
  return { card, value, sub };
}

function renderKpis() {
  const p = store.plantStatus;
  const k = kpiEls;
  if (!p) {
    for (const x of Object.values(k)) {
      x.value.textContent = "—";
      x.sub.textContent = "";
    }
    return;
  }
  k.reporting.value.textContent = `${number(p.reporting)} / ${number(p.sensors)}`;
  const pct = p.sensors ? (100 * p.reporting) / p.sensors : 0;
  k.reporting.sub.textContent = `${number(pct, 1)} % · ${number(p.stale)} stale`;
  k.anomalies.value.replaceChildren(
    el(
      "div.sev",
      {},
      el("span", { style: "color: var(--critical)" }, String(p.open_critical), el("small", { text: "critical" })),
      el("span", { style: "color: var(--major)" }, String(p.open_major), el("small", { text: "major" })),
      el("span", { style: "color: var(--minor)" }, String(p.open_minor), el("small", { text: "minor" })),
    ),
  );
  k.anomalies.card.classList.toggle("alert", p.open_critical > 0);
  k.anomalies.sub.textContent = `${number(p.anomalous)} ${p.anomalous === 1 ? "sensor" : "sensors"} anomalous · ${number(p.warning)} warning`;
  k.due.value.textContent = number(p.machines_due_7d);
  k.due.sub.textContent = `of ${number(store.machines.size)} machines`;
  k.rate.value.textContent = number(p.readings_per_s);
  k.rate.sub.textContent = "readings per second";
  renderFreshness();
}

function renderFreshness() {
  const p = store.plantStatus;
  if (!p || !kpiEls) return;
  const newest = p.newest_reading_ms;
  // In the past, freshness is measured at the instant shown.
  const past = store.replay;
  kpiEls.fresh.value.textContent = newest ? age(newest, past ? past.at_ms : Date.now()) : "—";
  const live = store.link && store.link.state === "live";
  kpiEls.fresh.sub.textContent = past
    ? `since the newest reading, at ${clockTime(past.at_ms)}`
    : live
      ? "since the newest reading"
      : `as of ${clockTime(store.asOf)}`;
}

function renderLegend() {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const s of store.status.values()) if (s.status in counts) counts[s.status]++;
  for (const s of STATES) legendEls[s].textContent = number(counts[s]);
}

function renderLineStats(lineId) {
  const node = lineStats.get(lineId);
  if (!node) return;
  const ls = store.lineStatus.get(lineId);
  const line = store.lines.get(lineId);
  if (!ls) {
    node.textContent = line ? `${line.machines} machines` : "";
    return;
  }
  const open = ls.open_critical + ls.open_major + ls.open_minor;
  node.replaceChildren(
    `${number(ls.reporting)}/${number(ls.sensors)} sensors`,
    open ? " · " : "",
    open ? el("span.bad", { text: `${open} open` }) : "",
    ls.machines_due_7d ? ` · ${ls.machines_due_7d} due` : "",
  );
}

function firstRun() {
  const status = el("p.muted", { id: "demo-status" });
  const startBtn = el("button.primary", {
    id: "start-demo",
    text: "Start the demo factory",
    onclick: async () => {
      startBtn.disabled = true;
      status.textContent = "Starting the demo factory (floorwatch up)… this can take a minute the first time.";
      try {
        await call("start_demo");
        status.textContent = "Connected. Loading the plant…";
      } catch (e) {
        status.textContent = errorText(e);
        startBtn.disabled = false;
      }
    },
  });
  // Your plant: where it is, and your own token (the plant names you with it in every event).
  const input = (id, placeholder, type = "text") => el("input", { id, type, placeholder, autocomplete: "off", spellcheck: "false" });
  const plant = input("first-plant", "P1");
  const db = input("first-database", "postgresql://floorwatch_reader:password@host:port/database", "password");
  const cmd = input("first-command", "http://plant-node:8081");
  const token = input("first-token", "fwt_…", "password");
  const connectStatus = el("p.muted", { id: "first-status" });
  const connect = el("button.primary", {
    id: "first-connect",
    text: "Connect and sign in",
    onclick: async () => {
      connect.disabled = true;
      connectStatus.textContent = "Signing in…";
      try {
        const connection = { plant: plant.value.trim(), database_url: db.value.trim(), command_url: cmd.value.trim(), token: "", user: "", role: "" };
        const user = await call("sign_in", { token: token.value.trim(), connection });
        connectStatus.textContent = user.confirmed ? `Signed in as ${user.name} (${user.role}). Loading the plant…` : "Connected; the plant could not confirm the token yet.";
      } catch (e) {
        connectStatus.textContent = errorText(e);
        connect.disabled = false;
      }
    },
  });
  const field = (label, node) => [el("label", { for: node.id, text: label }), node];
  return el(
    "div.card.empty",
    { id: "first-run" },
    el("h1", { text: "No plant connected yet" }),
    el("p", {
      text:
        "Floorwatch shows one plant's floor live. Connect it to your plant and sign in with your own token, " +
        "or start the demo factory on this machine: a simulated plant with 10,000 sensors.",
    }),
    el("div.actions", {}, startBtn),
    status,
    el(
      "div.form.sign-in",
      { id: "first-sign-in" },
      field("Plant", plant),
      field("Read-model database", db),
      field("Command API", cmd),
      field("Your token", token),
      el("div.hint", { text: "Your administrator makes it with floorwatch user add and gives it to you once." }),
    ),
    el("div.actions", {}, connect),
    connectStatus,
    el("h2", { text: "Or: the managers' view" }),
    el("p", { text: "Every plant side by side from the cloud: KPIs, comparisons, exports and snapshot files." }),
    el("div.actions", {}, el("a.button", { id: "first-manager", href: "#/manager", text: "Open the managers' view" })),
  );
}

function build() {
  root.replaceChildren();
  tiles = new Map();
  lineStats = new Map();
  if (!store.configured && store.machines.size === 0) {
    root.append(firstRun());
    return;
  }
  kpiEls = {
    reporting: kpi("Sensors reporting", "reporting"),
    anomalies: kpi("Open anomalies", "anomalies"),
    due: kpi("Machines due within 7 days", "due"),
    fresh: kpi("Freshness", "fresh"),
    rate: kpi("Throughput", "rate"),
  };
  root.append(el("section.kpis", { "aria-label": "Plant KPIs" }, Object.values(kpiEls).map((k) => k.card)));
  legendEls = {};
  const legend = el("div.legend", { "aria-label": "Legend" });
  for (const s of STATES) {
    legendEls[s] = el("b");
    legend.append(el("span", {}, el(`i.tile.${s}`, { style: "display:inline-block" }), STATE_NAMES[s], legendEls[s]));
  }
  root.append(legend);

  const byLine = new Map();
  for (const m of store.machines.values()) {
    if (!byLine.has(m.line_id)) byLine.set(m.line_id, []);
    byLine.get(m.line_id).push(m);
  }
  const lineIds = [...new Set([...store.lines.keys(), ...byLine.keys()])].sort();
  if (lineIds.length === 0) {
    root.append(el("div.card.empty", {}, el("h1", { text: "Waiting for the plant's layout" }), el("p", { text: "The plant has not published its machines yet." })));
  }
  const lines = el("div.lines", { id: "lines" });
  for (const lineId of lineIds) {
    const machines = (byLine.get(lineId) || []).sort((a, b) => a.number - b.number);
    const stats = el("span.stats");
    lineStats.set(lineId, stats);
    const grid = el("div.tiles", { role: "grid", "aria-label": lineLabel(lineId) });
    for (const m of machines) {
      const tile = el("button.tile", {
        "data-machine": m.machine_id,
        tabindex: "-1",
        text: String(m.number),
        onclick: () => go(`#/machine/${encodeURIComponent(m.machine_id)}`),
        onfocus: (e) => ((focusId = m.machine_id), describeTile(e.target)),
        onmouseenter: (e) => describeTile(e.target),
      });
      styleTile(tile, m.machine_id);
      tiles.set(m.machine_id, tile);
      grid.append(tile);
    }
    lines.append(el("section.card.line", { "data-line": lineId }, el("div.line-head", {}, el("h2", { text: lineLabel(lineId) }), stats), grid));
    renderLineStats(lineId);
  }
  root.append(lines);
  const first = tiles.get(focusId) || tiles.values().next().value;
  if (first) first.tabIndex = 0;
  renderKpis();
  renderLegend();
  if (tiles.size && !window.__fwFirstPaint) requestAnimationFrame(() => (window.__fwFirstPaint = performance.now()));
}

export function mount(node) {
  root = node;
  build();
  timer = setInterval(renderFreshness, 1000);
}

export function unmount() {
  clearInterval(timer);
  root = null;
  tiles = new Map();
}

export function onDelta(changes) {
  if (!root) return;
  const structural = changes.machines.length || changes.lines.length;
  if (structural || (tiles.size === 0 && store.machines.size > 0)) {
    build();
    return;
  }
  for (const s of changes.machine_status) {
    const tile = tiles.get(s.machine_id);
    if (tile) styleTile(tile, s.machine_id);
  }
  if (changes.machine_status.length) renderLegend();
  for (const l of changes.line_status) renderLineStats(l.id);
  if (changes.plant_status.length) renderKpis();
}

export function onLink() {
  renderFreshness();
  if (root && !tiles.size) build();
}

/** Arrow keys move between tiles by their position on screen; Enter opens one. */
export function onKey(e) {
  const keys = ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"];
  if (!keys.includes(e.key) && e.key !== "Enter") return false;
  const list = [...tiles.values()];
  if (!list.length) return false;
  let cur = document.activeElement && document.activeElement.classList.contains("tile") ? document.activeElement : null;
  if (!cur) {
    cur = tiles.get(focusId) || list[0];
    cur.focus();
    return true;
  }
  if (e.key === "Enter") {
    cur.click();
    return true;
  }
  let next = null;
  const i = list.indexOf(cur);
  if (e.key === "ArrowLeft") next = list[Math.max(0, i - 1)];
  else if (e.key === "ArrowRight") next = list[Math.min(list.length - 1, i + 1)];
  else if (e.key === "Home") next = list[0];
  else if (e.key === "End") next = list[list.length - 1];
  else {
    const r = cur.getBoundingClientRect();
    const cx = r.left + r.width / 2;
    const down = e.key === "ArrowDown";
    let best = null;
    let bestScore = Infinity;
    for (const t of list) {
      const q = t.getBoundingClientRect();
      const dy = down ? q.top - r.bottom : r.top - q.bottom;
      if (dy < -1) continue;
      const score = dy * 4 + Math.abs(q.left + q.width / 2 - cx);
      if (score < bestScore) {
        bestScore = score;
        best = t;
      }
    }
    next = best || cur;
  }
  cur.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
  next.scrollIntoView({ block: "nearest" });
  return true;
}

