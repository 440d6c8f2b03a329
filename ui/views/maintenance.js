// Maintenance: machines by predicted days to service, with the prediction's interval,
// open work orders, how past predictions for each machine (or its type) turned out, and
// the actions to schedule and record service.

import { store, go, openDialog, toast, trackOf } from "../app.js";
import { call, el, dateTime, days, lineLabel, shortMachine } from "../util.js";
import { total, short, sentence } from "../track.js";

let root = null;
let tbody = null;
let horizon = "30";
let selected = null;
let rows = [];
/** Machines shown as due, to re-render only when the plant's answer changes. */
let dueShown = new Set();

/** Whether the plant counts the machine as due for service (its read model says so). */
function isDue(machineId) {
  const s = store.status.get(machineId);
  return Boolean(s && s.due);
}

function listed() {
  const list = [];
  for (const m of store.machines.values()) {
    const p = store.maintenance.get(m.machine_id);
    const d = p ? p.predicted_days : null;
    const due = isDue(m.machine_id);
    // A horizon lists the machines predicted to need service within it, and always the due ones.
    if (horizon !== "all" && !due && (d === null || d === undefined || d > Number(horizon))) continue;
    list.push({ m, p, d: d ?? Infinity, due });
  }
  list.sort((a, b) => a.d - b.d || a.m.machine_id.localeCompare(b.m.machine_id));
  return list;
}

function intervalBar(p) {
  const max = 60;
  const bar = el("div.interval-bar", { title: p ? `${days(p.lower_days)} – ${days(p.upper_days)} days` : "" });
  if (!p || p.predicted_days === null) return bar;
  const pct = (v) => `${Math.max(0, Math.min(100, (100 * v) / max))}%`;
  bar.append(
    el("div.week", { style: `left:${pct(7)}` }),
    el("div.range", { style: `left:${pct(p.lower_days)}; width:calc(${pct(p.upper_days)} - ${pct(p.lower_days)})` }),
    el("div.mark", { style: `left:${pct(p.predicted_days)}` }),
  );
  return bar;
}

/** The machine's own track record, or its type's while the machine has none. */
function trackCell(m) {
  const own = total(trackOf("machine", m.machine_id));
  const type = total(trackOf("machine_type", m.machine_type));
  const title = `This machine: ${sentence(own)}\nEvery ${m.machine_type}: ${sentence(type)}`;
  if (own.failures || own.scored) return el("td.track-cell", { title, text: short(own) });
  if (type.failures || type.scored) return el("td.track-cell", { title }, el("span.muted", { text: `type: ${short(type)}` }));
  return el("td.track-cell.muted", { title, text: "—" });
}

function render() {
  rows = listed();
  dueShown = new Set(rows.filter((r) => r.due).map((r) => r.m.machine_id));
  tbody.replaceChildren(
    ...rows.slice(0, 700).map(({ m, p, d, due }) => {
      const order = p && p.open_order_id ? `${p.open_order_kind || "planned"}, ${dateTime(p.scheduled_for_ms)}` : "—";
      const pending = store.commands.filter((c) => c.command.machine_id === m.machine_id);
      return el(
        "tr",
        {
          "data-machine": m.machine_id,
          "aria-selected": m.machine_id === selected ? "true" : "false",
          onclick: () => select(m.machine_id),
          ondblclick: () => go(`#/machine/${encodeURIComponent(m.machine_id)}`),
        },
        el("td", {}, el("a", { href: `#/machine/${encodeURIComponent(m.machine_id)}`, text: shortMachine(m.machine_id) }), el("div.muted", { text: m.machine_type })),
        el("td", { text: lineLabel(m.line_id) }),
        // Due, as on the plant floor and in its KPI: what the plant's read model says.
        el(`td.num${due ? ".due-soon" : ""}`, { text: Number.isFinite(d) ? `${days(d)} d` : "—" }),
        el("td", {}, intervalBar(p)),
        trackCell(m),
        el("td", {}, order, pending.map((c) => el(`div.${c.state === "failed" ? "tag-failed" : "tag-pending"}`, { text: `${c.label}: ${c.state === "failed" ? "refused" : "pending"}` }))),
        el("td.num", { text: p && p.last_performed_at_ms ? dateTime(p.last_performed_at_ms) : "—" }),
        el(
          "td.actions",
          {},
          el("button.small", { text: "Schedule", onclick: (e) => (e.stopPropagation(), scheduleFor(m.machine_id)) }),
          el("button.small", { text: "Record", onclick: (e) => (e.stopPropagation(), recordFor(m.machine_id, p)) }),
        ),
      );
    }),
  );
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: "8", class: "muted", text: "No machine is predicted to need service in this horizon." })));
}

function select(id) {
  selected = id;
  for (const tr of tbody.querySelectorAll("tr[data-machine]")) tr.setAttribute("aria-selected", tr.dataset.machine === id ? "true" : "false");
}

function localInput(ms) {
  return new Date(ms - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function scheduleFor(machineId) {
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

function recordFor(machineId, p) {
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
      await call("submit", { command: { kind: "record_maintenance", machine_id: machineId, order_id: (p && p.open_order_id) || null, performed_at_ms: when, note: v.note.trim() } });
      toast("Service recorded", machineId);
    },
  );
}

export function mount(node) {
  root = node;
  tbody = el("tbody", { id: "maintenance-rows" });
  const h = el(
    "select",
    { id: "horizon", onchange: () => ((horizon = h.value), render()) },
    [["7", "Due within 7 days"], ["30", "Due within 30 days"], ["all", "All machines"]].map(([v, t]) => el("option", { value: v, text: t })),
  );
  h.value = horizon;
  root.append(
    el("h1", { text: "Maintenance" }),
    el("div.toolbar", {}, el("label", {}, "Show", h), el("span.grow"), el("span.muted", { text: "Bar: predicted interval over the next 60 days; dashed line: 7 days" })),
    el(
      "div.card",
      { style: "padding:0" },
      el("table", {}, el("thead", {}, el("tr", {}, ["Machine", "Line", "Service in", "Interval", "Track record", "Work order", "Last service", ""].map((t) => el("th", { text: t })))), tbody),
    ),
  );
  render();
}

export function unmount() {
  root = tbody = null;
}

export function onDelta(changes) {
  const dueChanged = changes.machine_status.some((s) => Boolean(s.due) !== dueShown.has(s.machine_id));
  if (changes.maintenance.length || changes.machines.length || changes.track_record.length || dueChanged) render();
}

export function onCommands() {
  render();
}

export function onKey(e) {
  const i = rows.findIndex((r) => r.m.machine_id === selected);
  if (e.key === "ArrowDown" || e.key === "j") {
    if (rows[i + 1]) select(rows[i + 1].m.machine_id);
    return true;
  }
  if (e.key === "ArrowUp" || e.key === "k") {
    if (i > 0) select(rows[i - 1].m.machine_id);
    return true;
  }
  if (e.key === "Enter" && selected) {
    go(`#/machine/${encodeURIComponent(selected)}`);
    return true;
  }
  return false;
}
