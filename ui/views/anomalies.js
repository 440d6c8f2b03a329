// Anomalies: the live list with filters, the selected anomaly's evidence and notes, and
// the actions (acknowledge with a note, shelve until a time, add a note). Actions are
// queued by the app and shown as pending until the plant's read models reflect them.

import { store, go, openDialog, pendingFor, toast } from "../app.js";
import { call, el, age, dateTime, reading, shortMachine, lineLabel } from "../util.js";

const SEVERITY_RANK = { critical: 0, major: 1, minor: 2 };
const filters = { state: "open", severity: "all", line: "all", text: "" };
let root = null;
let tbody = null;
let detail = null;
let selected = null;
let rows = [];
let timer = null;

function matches(a) {
  if (filters.state === "open" && a.state === "resolved") return false;
  if (filters.state !== "open" && filters.state !== "all" && a.state !== filters.state) return false;
  if (filters.severity !== "all" && a.severity !== filters.severity) return false;
  if (filters.line !== "all" && a.line_id !== filters.line) return false;
  if (filters.text) {
    const t = filters.text.toLowerCase();
    const hay = `${a.anomaly_id} ${a.machine_id} ${a.explanation} ${a.sensors.map((s) => s.name || "").join(" ")}`.toLowerCase();
    if (!hay.includes(t)) return false;
  }
  return true;
}

function sorted() {
  const list = [...store.anomalies.values()].filter(matches);
  list.sort((a, b) => {
    const ao = a.state === "resolved" ? 1 : 0;
    const bo = b.state === "resolved" ? 1 : 0;
    if (ao !== bo) return ao - bo;
    const an = a.state === "new" ? 0 : 1;
    const bn = b.state === "new" ? 0 : 1;
    if (an !== bn) return an - bn;
    const s = (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3);
    return s || b.started_at_ms - a.started_at_ms;
  });
  return list;
}

function stateCell(a) {
  const cell = el("td");
  let label = a.state;
  if (a.state === "shelved" && a.shelved_until_ms) label = `shelved until ${dateTime(a.shelved_until_ms)}`;
  cell.append(el(`span.state.${a.state}`, { text: label }));
  if (a.state === "acknowledged" && a.acknowledged_by) cell.append(el("div.muted", { text: `by ${a.acknowledged_by}` }));
  for (const c of pendingFor(a.anomaly_id)) {
    const cls = c.state === "failed" ? "tag-failed" : "tag-pending";
    const text = c.state === "failed" ? `${c.label}: refused` : `${c.label.split(" ")[0]} pending`;
    cell.append(el(`div.${cls}`, { text }));
  }
  return cell;
}

function actionsCell(a) {
  const cell = el("td.actions");
  if (a.state === "resolved") return cell;
  if (a.state === "new") cell.append(el("button.small", { text: "Acknowledge", title: "Acknowledge (a)", onclick: (e) => (e.stopPropagation(), acknowledge(a)) }));
  cell.append(el("button.small", { text: "Shelve", title: "Shelve until a time (s)", onclick: (e) => (e.stopPropagation(), shelve(a)) }));
  return cell;
}

function renderRows() {
  if (!tbody) return;
  rows = sorted();
  if (selected && !rows.some((a) => a.anomaly_id === selected)) selected = rows.length ? rows[0].anomaly_id : null;
  if (!selected && rows.length) selected = rows[0].anomaly_id;
  const now = Date.now();
  tbody.replaceChildren(
    ...rows.slice(0, 500).map((a) => {
      const sensors = a.sensors.map((s) => s.name || s.sensor).join(", ");
      return el(
        "tr",
        {
          "data-anomaly": a.anomaly_id,
          "aria-selected": a.anomaly_id === selected ? "true" : "false",
          onclick: () => select(a.anomaly_id),
          ondblclick: () => go(`#/machine/${encodeURIComponent(a.machine_id)}`),
        },
        el("td", {}, el(`span.pill.${a.severity}`, { text: a.severity })),
        el("td", { style: "white-space: nowrap" }, el("div", { text: shortMachine(a.machine_id) }), el("div.muted", { text: store.machines.get(a.machine_id)?.machine_type || "" })),
        el("td", {}, el("div", { text: a.explanation }), el("div.muted", { text: sensors })),
        el("td.num", { text: age(a.started_at_ms, now), title: dateTime(a.started_at_ms) }),
        stateCell(a),
        actionsCell(a),
      );
    }),
  );
  if (!rows.length) {
    tbody.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No anomaly matches these filters." })));
  }
  renderDetail();
}

function renderDetail() {
  if (!detail) return;
  const a = store.anomalies.get(selected);
  if (!a) {
    detail.replaceChildren(el("p.muted", { text: "Select an anomaly to see its evidence." }));
    return;
  }
  const m = store.machines.get(a.machine_id);
  const evidence = a.sensors.map((s) =>
    el(
      "div.evidence",
      {},
      el("div", {}, el("b", { text: s.name || `sensor ${s.sensor}` }), s.test ? ` · ${s.test}` : ""),
      el(
        "div",
        {},
        "observed ",
        el("b", { text: reading(s.observed) }),
        s.lower !== undefined && s.lower !== null ? ` · expected ${reading(s.lower)} – ${reading(s.upper)}` : "",
        s.score !== undefined && s.score !== null ? ` · score ${reading(s.score)}` : "",
      ),
    ),
  );
  const notes = el(
    "ul.notes",
    {},
    a.notes.length
      ? a.notes.map((n) => el("li", {}, el("div", { text: n.text }), el("div.who", { text: `${n.by} · ${n.at ? dateTime(Date.parse(n.at)) : ""}` })))
      : el("li.muted", { text: "No notes yet." }),
  );
  detail.replaceChildren(
    el("h2", {}, el(`span.pill.${a.severity}`, { text: a.severity }), " ", a.anomaly_id),
    el("p.explanation", { text: a.explanation }),
    el(
      "dl",
      {},
      el("dt", { text: "Machine" }),
      el("dd", {}, el("a", { href: `#/machine/${encodeURIComponent(a.machine_id)}`, text: `${a.machine_id}${m ? ` · ${m.description}` : ""}` })),
      el("dt", { text: "Line" }),
      el("dd", { text: lineLabel(a.line_id) }),
      el("dt", { text: "Started" }),
      el("dd", { text: `${dateTime(a.started_at_ms)} (${age(a.started_at_ms)} ago)` }),
      el("dt", { text: "State" }),
      el("dd", { text: a.state }),
      a.acknowledged_by ? [el("dt", { text: "Acknowledged" }), el("dd", { text: `${a.acknowledged_by}, ${dateTime(a.acknowledged_at_ms)}` })] : [],
      a.shelved_until_ms ? [el("dt", { text: "Shelved until" }), el("dd", { text: `${dateTime(a.shelved_until_ms)} by ${a.shelved_by || "?"}` })] : [],
      a.resolved_at_ms ? [el("dt", { text: "Resolved" }), el("dd", { text: dateTime(a.resolved_at_ms) })] : [],
      el("dt", { text: "Score" }),
      el("dd", { text: reading(a.score) }),
    ),
    el("h2", { text: "Evidence" }),
    ...evidence,
    el("h2", { text: "Notes", style: "margin-top: 0.9rem" }),
    notes,
    el(
      "div.button-row",
      {},
      a.state === "new" ? el("button.primary", { id: "ack-selected", text: "Acknowledge…", onclick: () => acknowledge(a) }) : "",
      a.state !== "resolved" ? el("button", { text: "Shelve…", onclick: () => shelve(a) }) : "",
      el("button", { text: "Add note…", onclick: () => note(a) }),
      el("button", { text: "Open machine", onclick: () => go(`#/machine/${encodeURIComponent(a.machine_id)}`) }),
    ),
  );
}

function select(id) {
  selected = id;
  for (const tr of tbody.querySelectorAll("tr[data-anomaly]")) tr.setAttribute("aria-selected", tr.dataset.anomaly === id ? "true" : "false");
  renderDetail();
}

async function submit(command) {
  const queued = await call("submit", { command });
  if (store.link.state !== "live") toast("Queued", `${queued.label} will be sent when the plant is reachable.`);
}

export function acknowledge(a) {
  openDialog(`Acknowledge ${a.anomaly_id}`, [{ name: "note", label: "Note (what you saw or did)", type: "textarea" }], "Acknowledge", (v) =>
    submit({ kind: "acknowledge", anomaly_id: a.anomaly_id, note: v.note.trim() }),
  );
}

function localInput(ms) {
  const d = new Date(ms - new Date().getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export function shelve(a) {
  openDialog(
    `Shelve ${a.anomaly_id}`,
    [
      { name: "until", label: "Until", type: "datetime-local", value: localInput(Date.now() + 4 * 3600 * 1000), required: true },
      { name: "note", label: "Why (shown to the next shift)", type: "textarea" },
    ],
    "Shelve",
    (v) => {
      const until = new Date(v.until).getTime();
      if (!Number.isFinite(until)) throw { message: "Pick a date and time." };
      if (until <= Date.now()) throw { message: "Pick a time in the future." };
      return submit({ kind: "shelve", anomaly_id: a.anomaly_id, until_ms: until, note: v.note.trim() });
    },
  );
}

export function note(a) {
  openDialog(`Note on ${a.anomaly_id}`, [{ name: "text", label: "Note", type: "textarea", required: true }], "Add note", (v) =>
    submit({ kind: "add_note", anomaly_id: a.anomaly_id, text: v.text.trim() }),
  );
}

function select_(name, label, options) {
  const s = el("select", { id: `filter-${name}`, onchange: () => ((filters[name] = s.value), renderRows()) }, options.map(([v, t]) => el("option", { value: v, text: t })));
  s.value = filters[name];
  return el("label", {}, label, s);
}

export function mount(node) {
  root = node;
  const wanted = sessionStorage.getItem("fw-select");
  if (wanted) {
    sessionStorage.removeItem("fw-select");
    selected = wanted;
    filters.state = "all";
  }
  const lines = [...store.lines.keys()].sort().map((l) => [l, lineLabel(l)]);
  const search = el("input", {
    id: "filter-text",
    type: "search",
    placeholder: "Search   /",
    value: filters.text,
    oninput: () => ((filters.text = search.value), renderRows()),
  });
  tbody = el("tbody", { id: "anomaly-rows" });
  detail = el("aside.card.detail", { id: "anomaly-detail" });
  root.append(
    el("h1", { text: "Anomalies" }),
    el(
      "div.toolbar",
      {},
      select_("state", "State", [["open", "Open"], ["new", "New"], ["acknowledged", "Acknowledged"], ["shelved", "Shelved"], ["resolved", "Resolved"], ["all", "All"]]),
      select_("severity", "Severity", [["all", "All"], ["critical", "Critical"], ["major", "Major"], ["minor", "Minor"]]),
      select_("line", "Line", [["all", "All lines"], ...lines]),
      el("span.grow"),
      search,
    ),
    el(
      "div.split",
      {},
      el(
        "div.card",
        { style: "padding: 0" },
        el("table", { id: "anomaly-table" }, el("thead", {}, el("tr", {}, ["Severity", "Machine", "What happened", "Age", "State", ""].map((t) => el("th", { text: t })))), tbody),
      ),
      detail,
    ),
  );
  renderRows();
  timer = setInterval(() => {
    for (const tr of tbody.querySelectorAll("tr[data-anomaly]")) {
      const a = store.anomalies.get(tr.dataset.anomaly);
      if (a) tr.children[3].textContent = age(a.started_at_ms);
    }
  }, 5000);
}

export function unmount() {
  clearInterval(timer);
  root = tbody = detail = null;
}

export function onDelta(changes) {
  if (changes.anomalies.length || changes.machines.length) renderRows();
}

export function onCommands() {
  renderRows();
}

export function onKey(e) {
  const i = rows.findIndex((a) => a.anomaly_id === selected);
  const a = rows[i];
  switch (e.key) {
    case "ArrowDown":
    case "j":
      if (i < rows.length - 1) select(rows[i + 1].anomaly_id);
      tbody.querySelector('tr[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
      return true;
    case "ArrowUp":
    case "k":
      if (i > 0) select(rows[i - 1].anomaly_id);
      tbody.querySelector('tr[aria-selected="true"]')?.scrollIntoView({ block: "nearest" });
      return true;
    case "a":
      if (a && a.state === "new") acknowledge(a);
      return true;
    case "s":
      if (a && a.state !== "resolved") shelve(a);
      return true;
    case "n":
      if (a) note(a);
      return true;
    case "Enter":
      if (a) go(`#/machine/${encodeURIComponent(a.machine_id)}`);
      return true;
    case "/":
      document.getElementById("filter-text").focus();
      return true;
    default:
      return false;
  }
}

