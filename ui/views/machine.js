// A machine: its state, the maintenance prediction and how it moved, live trend charts
// of every sensor (drawn by the app with plotters; hover reads a value), its anomalies,
// work orders and event history, and how past predictions for it and its type turned out.

import { go, openDialog, isDark, toast, store } from "../app.js";
import { call, el, age, dateTime, days, reading, number, lineLabel, errorText } from "../util.js";
import { total, sentence, versionTable, atLead } from "../track.js";

const RANGES = [
  ["15m", 15 * 60e3],
  ["1h", 3600e3],
  ["4h", 4 * 3600e3],
  ["24h", 24 * 3600e3],
  ["7d", 7 * 24 * 3600e3],
  ["30d", 30 * 24 * 3600e3],
];
let spanMs = 3600e3;
let root = null;
let machineId = null;
let page = null;
// A change to this machine arrived while its page was being read.
let missed = false;
let charts = new Map(); // sensor id → { card, body, value, foot, view }
let timer = null;
let loading = false;

function statusPill(status) {
  return el(`span.pill.${status || "unknown"}`, { text: status || "no status" });
}

function predictionCard() {
  const m = page.maintenance;
  const card = el("section.card.prediction", { id: "prediction" }, el("h2", { text: "Maintenance prediction" }));
  if (!m || m.predicted_days === null || m.predicted_days === undefined) {
    card.append(el("p.muted", { text: "No prediction for this machine yet." }));
  } else {
    card.append(
      el("div.days", { text: `${days(m.predicted_days)} days` }),
      el("div.interval", { text: `likely between ${days(m.lower_days)} and ${days(m.upper_days)} days` }),
      el("div.muted", { text: `model ${m.model_version || "?"}, ${dateTime(m.predicted_at_ms)}` }),
    );
  }
  if (m && m.open_order_id) {
    card.append(el("p", {}, el("b", { text: `${m.open_order_kind || "planned"} service scheduled` }), ` for ${dateTime(m.scheduled_for_ms)}`));
  } else if (m && m.last_performed_at_ms) {
    card.append(el("p.muted", { text: `Last serviced ${dateTime(m.last_performed_at_ms)}` }));
  }
  const preds = page.predictions.slice(-12);
  if (preds.length > 1) {
    const list = el("ul.moves", { "aria-label": "How the estimate moved" });
    for (let i = preds.length - 1; i >= 0; i--) {
      const p = preds[i];
      const prev = preds[i - 1];
      const diff = prev ? p.days - prev.days : 0;
      const expected = prev ? (p.predicted_at_ms - prev.predicted_at_ms) / 86400e3 : 0;
      // Moving faster than the calendar means the machine wears quicker than thought.
      const cls = prev && diff < -expected - 0.5 ? "down" : prev && diff > -expected + 0.5 ? "up" : "";
      list.append(
        el(
          "li",
          {},
          el("span.muted", { text: dateTime(p.predicted_at_ms) }),
          el(`span${cls ? "." + cls : ""}`, { text: `${days(p.days)} d (${days(p.lower_days)}–${days(p.upper_days)})${prev ? ` ${diff >= 0 ? "+" : ""}${number(diff, 1)}` : ""}` }),
        ),
      );
    }
    card.append(el("h2", { text: "How the estimate moved", style: "margin-top: 0.8rem" }), list);
  }
  card.append(
    el(
      "div.button-row",
      {},
      el("button", { id: "schedule-service", text: "Schedule service…", onclick: scheduleService }),
      el("button", { id: "record-service", text: "Record service…", onclick: recordService }),
    ),
  );
  return card;
}

/** How far to trust today's number: how this machine's and its type's past predictions turned out. */
function trackCard() {
  const t = page.track || { machine: [], machine_type: [], failures: [] };
  const type = page.machine.machine_type;
  const card = el(
    "section.card.track-card",
    { id: "track-record" },
    el("h2", { text: "Track record of the predictions" }),
    el("p", { id: "track-machine" }, el("b", { text: "This machine: " }), sentence(total(t.machine))),
    el("p", { id: "track-type" }, el("b", { text: `Every ${type}: ` }), sentence(total(t.machine_type))),
  );
  if (t.failures.length) {
    const leads = [7, 3, 1];
    const alerted = (f) =>
      f.caught ? `in time, ${days(f.alert_lead_days)} d ahead` : f.alert_lead_days === null || f.alert_lead_days === undefined ? "not alerted" : `${days(f.alert_lead_days)} d ahead`;
    card.append(
      el("h3", { text: "Failures: what was predicted before them" }),
      el(
        "table.track",
        { id: "track-failures" },
        el("thead", {}, el("tr", {}, ["Failed", "Model", "Alert", ...leads.map((l) => `${l} d before`), "Interval held"].map((h) => el("th", { text: h })))),
        el(
          "tbody",
          {},
          t.failures.slice(0, 10).map((f) =>
            el(
              "tr",
              {},
              el("td", { text: dateTime(f.failed_at_ms) }),
              el("td", { text: f.model_version || "no prediction" }),
              el(`td${f.caught ? "" : ".missed"}`, { text: alerted(f) }),
              leads.map((l) => el("td.num", {}, atLead(f, l))),
              el("td.num", { text: f.scored ? `${f.covered} of ${f.scored}` : "—" }),
            ),
          ),
        ),
      ),
    );
  }
  if (t.machine_type.length) {
    card.append(el("h3", { text: `Every ${type}, by model version` }), versionTable(t.machine_type));
  }
  return card;
}

function summaryCard() {
  const s = page.status;
  const open = page.anomalies.filter((a) => a.state !== "resolved");
  const card = el("section.card", {}, el("h2", { text: "Now" }));
  card.append(
    el(
      "dl.detail",
      { style: "display:grid; grid-template-columns:auto 1fr; gap:0.3rem 1rem; margin:0" },
      el("dt.muted", { text: "Sensors reporting" }),
      el("dd", { style: "margin:0", text: s ? `${s.reporting} / ${s.sensors}` : "—" }),
      el("dt.muted", { text: "Outside normal range" }),
      el("dd", { style: "margin:0", text: s ? String(s.warning) : "—" }),
      el("dt.muted", { text: "Open anomalies" }),
      el("dd", { style: "margin:0", text: s ? `${s.open_critical} critical, ${s.open_major} major, ${s.open_minor} minor` : "—" }),
      el("dt.muted", { text: "Newest reading" }),
      el("dd", { style: "margin:0", text: s && s.newest_reading_ms ? `${age(s.newest_reading_ms)} ago` : "—" }),
    ),
  );
  if (open.length) {
    card.append(
      el("h2", { text: "Open anomalies", style: "margin-top:0.8rem" }),
      el(
        "ul.notes",
        {},
        open.slice(0, 5).map((a) =>
          el("li", {}, el(`span.pill.${a.severity}`, { text: a.severity }), " ", el("a", { href: "#/anomalies", text: a.explanation, onclick: () => sessionStorage.setItem("fw-select", a.anomaly_id) }), el("div.who", { text: `${a.state} · started ${age(a.started_at_ms)} ago` })),
        ),
      ),
    );
  }
  return card;
}

function historySection() {
  const rows = [];
  for (const a of page.audit) rows.push({ at: a.recorded_at_ms, who: a.actor || "—", what: a.summary, type: a.event_type });
  for (const w of page.work_orders) {
    if (!page.audit.some((a) => a.summary.includes(w.order_id))) {
      rows.push({ at: w.performed_at_ms || w.scheduled_for_ms, who: w.performed_by || w.scheduled_by || "—", what: `${w.kind} service ${w.state}${w.performed_note || w.note ? `: ${w.performed_note || w.note}` : ""}`, type: "Work order" });
    }
  }
  rows.sort((a, b) => (b.at || 0) - (a.at || 0));
  return el(
    "section.card.section",
    { id: "history" },
    el("h2", { text: "Event history" }),
    rows.length
      ? el(
          "table",
          {},
          el("thead", {}, el("tr", {}, ["When", "Who", "Event", "What"].map((t) => el("th", { text: t })))),
          el("tbody", {}, rows.slice(0, 100).map((r) => el("tr", {}, el("td.num", { text: dateTime(r.at) }), el("td", { text: r.who }), el("td", { text: r.type }), el("td", { text: r.what })))),
        )
      : el("p.muted", { text: "No events recorded for this machine yet." }),
  );
}

function chartStyle(body) {
  const width = Math.max(240, Math.min(2400, Math.round(body.clientWidth || 560)));
  const rem = parseFloat(getComputedStyle(document.documentElement).fontSize) || 15;
  return { width, height: Math.round(rem * 12), dark: isDark(), utc_offset_minutes: -new Date().getTimezoneOffset() };
}

function attachHover(entry) {
  const { body } = entry;
  const line = el("div.crosshair", { hidden: true });
  const readout = el("div.readout", { hidden: true });
  body.append(line, readout);
  body.addEventListener("mousemove", (e) => {
    const v = entry.view;
    if (!v || !v.points.length) return;
    const svg = body.querySelector("svg");
    if (!svg) return;
    const r = svg.getBoundingClientRect();
    const scale = r.width / v.frame_width;
    const x = (e.clientX - r.left) / scale;
    const f = v.frame;
    if (x < f.left || x > f.right) {
      line.hidden = readout.hidden = true;
      return;
    }
    const t = f.from_ms + ((x - f.left) / (f.right - f.left)) * (f.to_ms - f.from_ms);
    let best = v.points[0];
    for (const p of v.points) if (Math.abs(p.ts_ms - t) < Math.abs(best.ts_ms - t)) best = p;
    const px = (f.left + ((best.ts_ms - f.from_ms) / (f.to_ms - f.from_ms)) * (f.right - f.left)) * scale;
    line.hidden = readout.hidden = false;
    line.style.left = `${px}px`;
    const range = best.max > best.min ? ` (${reading(best.min)} – ${reading(best.max)})` : "";
    readout.textContent = `${dateTime(best.ts_ms)} · ${reading(best.mean)} ${v.sensor.unit}${range}`;
    const left = Math.min(px + 8, r.width - readout.offsetWidth - 4);
    readout.style.left = `${Math.max(0, left)}px`;
    readout.style.top = "4px";
  });
  body.addEventListener("mouseleave", () => (line.hidden = readout.hidden = true));
}

function buildCharts(container) {
  charts = new Map();
  for (const s of page.sensors) {
    const value = el("span.value");
    const body = el("div.chart-body", { "aria-label": `Trend of ${s.name}` });
    const foot = el("div.chart-foot");
    const card = el(
      "article.card.chart",
      { "data-sensor": String(s.sensor_id) },
      el("div.chart-head", {}, el("span", {}, el("span.name", { text: s.name }), el("span.muted", { text: ` · ${s.kind}` })), value),
      body,
      foot,
    );
    const entry = { card, body, value, foot, view: null, sensor: s };
    attachHover(entry);
    charts.set(s.sensor_id, entry);
    container.append(card);
  }
  renderValues();
}

function renderValues() {
  for (const st of page.states) {
    const c = charts.get(st.sensor_id);
    if (!c) continue;
    c.value.className = `value ${st.status}`;
    c.value.textContent = `${reading(st.value)} ${c.sensor.unit}`;
    c.value.title = `${st.status} · ${dateTime(st.ts_ms)}`;
  }
}

async function exportChart(sensorId, format) {
  const c = charts.get(sensorId);
  try {
    const style = { ...chartStyle(c.body), width: 1600, height: 500 };
    const path = await call("export_chart", { sensorId, spanMs, endMs: null, style, format });
    toast("Chart exported", path);
  } catch (e) {
    toast("Export failed", errorText(e), "error");
  }
}

async function loadCharts() {
  if (loading || !page || !charts.size) return;
  loading = true;
  const ids = [...charts.keys()];
  const first = charts.values().next().value;
  try {
    const views = await call("trends", { sensorIds: ids, spanMs, endMs: store.replay ? store.replay.at_ms : null, style: chartStyle(first.body) });
    for (const v of views) {
      const c = charts.get(v.sensor.sensor_id);
      if (!c) continue;
      v.frame_width = chartStyle(c.body).width;
      c.view = v;
      const old = c.body.querySelector("svg");
      const holder = document.createElement("div");
      holder.innerHTML = v.svg;
      const svg = holder.querySelector("svg");
      if (svg) {
        svg.setAttribute("viewBox", `0 0 ${v.frame_width} ${chartStyle(c.body).height}`);
        svg.removeAttribute("width");
        svg.removeAttribute("height");
        svg.setAttribute("role", "img");
        if (old) old.replaceWith(svg);
        else c.body.prepend(svg);
      }
      const source = v.from_cache ? "from the local cache" : { raw: "raw readings", minute: "minute aggregates", hour: "hour aggregates" }[v.resolution];
      const marks = v.marks.length ? ` · ${v.marks.length} anomal${v.marks.length === 1 ? "y" : "ies"}` : "";
      c.foot.replaceChildren(
        el("span", { text: `expected ${reading(v.sensor.normal_min)} – ${reading(v.sensor.normal_max)} ${v.sensor.unit} · ${source}${marks}` }),
        el("span", {}, el("button.small", { text: "PNG", title: "Export as PNG", onclick: () => exportChart(v.sensor.sensor_id, "png") }), " ", el("button.small", { text: "SVG", title: "Export as SVG", onclick: () => exportChart(v.sensor.sensor_id, "svg") })),
      );
    }
  } catch (e) {
    for (const c of charts.values()) c.foot.textContent = `Chart unavailable: ${errorText(e)}`;
  } finally {
    loading = false;
  }
}

function schedule() {
  clearInterval(timer);
  // Short windows move visibly every few seconds; long ones barely change in a minute.
  timer = setInterval(loadCharts, spanMs <= 4 * 3600e3 ? 5000 : 60000);
}

function rangeButtons() {
  const wrap = el("div.ranges", { role: "group", "aria-label": "Time range", id: "ranges" });
  for (const [label, ms] of RANGES) {
    wrap.append(
      el("button", {
        text: label,
        "data-span": String(ms),
        "aria-pressed": ms === spanMs ? "true" : "false",
        onclick: () => setRange(ms),
      }),
    );
  }
  return wrap;
}

function setRange(ms) {
  spanMs = ms;
  for (const b of root.querySelectorAll("#ranges button")) b.setAttribute("aria-pressed", Number(b.dataset.span) === ms ? "true" : "false");
  loadCharts();
  schedule();
}

function localInput(ms) {
  return new Date(ms - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function scheduleService() {
  openDialog(
    `Schedule service of ${machineId}`,
    [
      { name: "service", label: "Kind", type: "select", options: [["planned", "Planned"], ["emergency", "Emergency"]] },
      { name: "when", label: "When", type: "datetime-local", value: localInput(Date.now() + 24 * 3600e3), required: true },
      { name: "note", label: "Note", type: "textarea" },
    ],
    "Schedule",
    async (v) => {
      const when = new Date(v.when).getTime();
      if (!Number.isFinite(when)) throw { message: "Pick a date and time." };
      await call("submit", { command: { kind: "schedule_maintenance", machine_id: machineId, service: v.service, scheduled_for_ms: when, note: v.note.trim() } });
      toast("Service scheduled", `${machineId}, ${dateTime(when)}`);
    },
  );
}

function recordService() {
  const order = page.maintenance && page.maintenance.open_order_id;
  openDialog(
    `Record service of ${machineId}`,
    [
      { name: "when", label: "Performed at", type: "datetime-local", value: localInput(Date.now()), required: true },
      { name: "note", label: "What was done", type: "textarea" },
    ],
    "Record",
    async (v) => {
      const when = new Date(v.when).getTime();
      if (!Number.isFinite(when)) throw { message: "Pick a date and time." };
      await call("submit", { command: { kind: "record_maintenance", machine_id: machineId, order_id: order || null, performed_at_ms: when, note: v.note.trim() } });
      toast("Service recorded", machineId);
    },
  );
}

/** The machine as time travel shows it: its state, sensors and anomalies at that instant. */
function asOfReplay(p) {
  p.status = store.status.get(machineId) || null;
  p.maintenance = store.maintenance.get(machineId) || null;
  p.states = [...store.replaySensors.values()].filter((s) => s.machine_id === machineId);
  if (Array.isArray(p.anomalies)) p.anomalies = store.replay.anomalies.filter((a) => a.machine_id === machineId);
}

async function load() {
  missed = false;
  try {
    page = await call("machine", { machineId });
    if (store.replay) asOfReplay(page);
  } catch (e) {
    root.replaceChildren(el("div.card.empty", {}, el("h1", { text: "Machine not found" }), el("p", { text: errorText(e) }), el("button", { text: "Back to the floor", onclick: () => go("#/floor") })));
    return;
  }
  const m = page.machine;
  const status = page.status ? page.status.status : null;
  const chartGrid = el("div.charts", { id: "charts" });
  root.replaceChildren(
    el(
      "div.machine-head",
      {},
      el("button", { text: "← Floor", title: "Back (Esc)", onclick: () => history.length > 1 ? history.back() : go("#/floor") }),
      el("h1", { text: `${m.machine_id}` }),
      el("span.muted", { text: `${m.description} · ${m.machine_type} · ${lineLabel(m.line_id)}` }),
      statusPill(status),
      el("span.grow", { style: "flex:1" }),
      rangeButtons(),
    ),
    el("div.machine-top", {}, predictionCard(), summaryCard()),
    trackCard(),
    chartGrid,
    historySection(),
  );
  buildCharts(chartGrid);
  await loadCharts();
  schedule();
  if (missed && root) load();
}

export function mount(node, id) {
  root = node;
  machineId = id;
  page = null;
  root.append(el("p.muted", { text: "Loading…" }));
  load();
}

export function unmount() {
  clearInterval(timer);
  call("unwatch").catch(() => {});
  root = null;
  page = null;
  charts = new Map();
}

export function onDelta(changes) {
  if (!page) {
    // The page is being read: it may have been read before this change.
    if (root && touchesMachine(changes)) missed = true;
    return;
  }
  let changed = false;
  for (const st of changes.sensor_state) {
    if (st.machine_id !== machineId) continue;
    const i = page.states.findIndex((x) => x.sensor_id === st.sensor_id);
    if (i >= 0) page.states[i] = st;
    else page.states.push(st);
    changed = true;
  }
  if (changed) renderValues();
  if (touchesMachine(changes)) load();
}

/** Whether a change concerns this machine beyond its sensors' values. */
function touchesMachine(changes) {
  return (
    changes.anomalies.some((a) => a.machine_id === machineId) ||
    changes.maintenance.some((x) => x.machine_id === machineId) ||
    changes.audit.some((x) => x.machine_id === machineId) ||
    changes.work_orders.some((x) => x.machine_id === machineId) ||
    changes.track_failures.some((x) => x.machine_id === machineId) ||
    changes.track_record.some((x) => (x.scope === "machine" && x.id === machineId) || (page && x.scope === "machine_type" && x.id === page.machine.machine_type))
  );
}

export function onKey(e) {
  if (e.key === "Escape") {
    go("#/floor");
    return true;
  }
  const i = RANGES.findIndex(([, ms]) => ms === spanMs);
  if (e.key === "ArrowLeft" && i > 0) {
    setRange(RANGES[i - 1][1]);
    return true;
  }
  if (e.key === "ArrowRight" && i < RANGES.length - 1) {
    setRange(RANGES[i + 1][1]);
    return true;
  }
  return false;
}
