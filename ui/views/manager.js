// The managers' view: the plants side by side from the cloud (a day, a week, a month or a
// range picked by hand), drill-down to a plant's lines and machine types and to a
// machine's trend, comparisons, exports, and snapshot files. Everything is drawn by the
// app (plotters); the page only lays it out. Live while open: a change of the cloud's
// KPIs refreshes the view.

import { toast, isDark, openDialog } from "../app.js";
import { call, el, clockTime, dateTime, errorText } from "../util.js";

const METRICS = [
  ["oee", "OEE"],
  ["availability", "Availability"],
  ["performance", "Performance"],
  ["quality", "Quality"],
  ["sensor_availability", "Sensor availability"],
  ["anomalies", "Anomalies"],
  ["critical_anomalies", "Critical anomalies"],
  ["time_to_acknowledge", "Time to acknowledge"],
  ["maintenance_performed", "Maintenance performed"],
  ["failures", "Failures"],
  ["predicted_days", "Predicted days to service"],
];

/** What the manager is looking at; kept while the app runs. */
const state = {
  preset: "week",
  from: null,
  to: null,
  metric: "oee",
  compare: "plants",
  a: null,
  b: null,
  drill: null,
  line: null,
  machine: null,
  link: null,
  view: null,
  lastSnapshot: "",
  // While a snapshot is saved: { done, total, estimated_bytes }.
  saving: null,
};

// Render timings, read by the benchmark and the end-to-end tests.
window.__fwManager = { renders: [], exports: [], snapshots: [], errors: [] };

let root = null;
let loading = null;
let again = false;
let refreshTimer = null;

function request() {
  const width = Math.max(480, Math.min(1600, Math.round((root ? root.clientWidth : 1000) - 40)));
  const compare =
    state.compare === "previous"
      ? { kind: "previous" }
      : state.compare === "two_plants" && state.a && state.b
        ? { kind: "two_plants", a: state.a, b: state.b }
        : { kind: "plants" };
  return {
    preset: state.preset,
    from_ms: state.from,
    to_ms: state.to,
    metric: state.metric,
    plants: [],
    compare,
    drill: state.drill,
    style: { width, height: 360, dark: isDark() },
  };
}

export function mount(node) {
  root = node;
  draw();
  load();
}

export function unmount() {
  root = null;
  clearTimeout(refreshTimer);
}

/** Updates of the managers' view: the link, and changes of the cloud's read models. */
export function onManager(u) {
  if (u.type === "manager_link") {
    state.link = u.link;
    renderBadge();
    // Back from an outage: show the cloud's numbers again.
    if (u.link.state === "live" && state.view && state.view.source.kind === "cache") scheduleRefresh(200);
  } else if (u.type === "changed" && u.kpi_rows > 0) {
    scheduleRefresh(3000);
  } else if (u.type === "snapshot_progress" && state.saving) {
    state.saving = { done: u.done, total: u.total, estimated_bytes: u.estimated_bytes };
    const line = root && root.querySelector("#manager-saving");
    if (line) line.replaceWith(savingLine());
  }
}

function scheduleRefresh(ms) {
  if (!root || refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    load();
  }, ms);
}

async function load() {
  if (loading) {
    again = true;
    return loading;
  }
  const t0 = performance.now();
  loading = (async () => {
    try {
      const view = await call("manager_view", { request: request() });
      state.view = view;
      if (!state.link) state.link = view.link;
      draw();
      requestAnimationFrame(() => {
        const perf = window.__fwManager.renders;
        perf.push({ ms: performance.now() - t0, source: view.source.kind, at: Date.now() });
        if (perf.length > 200) perf.splice(0, perf.length - 200);
      });
    } catch (e) {
      const box = root && root.querySelector("#manager-error");
      if (box) box.textContent = errorText(e);
      else toast("The managers' view could not be drawn", errorText(e), "error");
    } finally {
      loading = null;
      if (again) {
        again = false;
        load();
      }
    }
  })();
  return loading;
}

function svgImage(svg, id, alt) {
  // An <img> never runs anything a drawing might carry.
  return el("img", { id, alt, class: "manager-chart", src: "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg) });
}

function renderBadge() {
  const badge = root && root.querySelector("#manager-badge");
  if (!badge) return;
  const l = state.link || { state: "connecting" };
  badge.dataset.state = l.state;
  const asOf = l.as_of_ms;
  const label = {
    live: "Cloud: live",
    connecting: "Cloud: connecting…",
    reconnecting: `Cloud: reconnecting… data as of ${clockTime(asOf)}`,
    offline: `Cloud: offline — data as of ${clockTime(asOf)}`,
    not_configured: "Cloud: not connected",
  }[l.state];
  badge.querySelector(".badge-text").textContent = label || l.state;
  badge.title = l.reason ? `Last error: ${l.reason}` : "";
}

function sourceText(v) {
  const s = v.source;
  if (s.kind === "snapshot") return `Snapshot made ${dateTime(s.made_at_ms)} (${s.scope}) — ${s.path}`;
  if (s.kind === "cache") return `From the cache: the cloud is not answering. Data as of ${s.as_of_ms ? dateTime(s.as_of_ms) : "—"}.`;
  return `From the cloud, ${clockTime(Date.now())}`;
}

function connectForm() {
  const url = el("input", { id: "manager-url", type: "text", placeholder: "http://cloud-node:8090", autocomplete: "off", spellcheck: "false" });
  const token = el("input", { id: "manager-token", type: "password", placeholder: "fwt_…", autocomplete: "off" });
  const status = el("p.muted", { id: "manager-connect-status" });
  return el(
    "div.card.empty",
    { id: "manager-first-run" },
    el("h1", { text: "Managers: every plant from the cloud" }),
    el("p", { text: "Connect to the cloud node with a manager's token (floorwatch cloud token create --role manager prints it), or open a snapshot file." }),
    el("div.form.sign-in", {}, el("label", { for: "manager-url", text: "Cloud API" }), url, el("label", { for: "manager-token", text: "Token" }), token),
    el(
      "div.actions",
      {},
      el("button.primary", {
        id: "manager-save",
        text: "Connect",
        onclick: async () => {
          try {
            await call("manager_configure", { url: url.value, token: token.value, openAtStart: true });
            status.textContent = "Connecting…";
            load();
          } catch (e) {
            status.textContent = errorText(e);
          }
        },
      }),
    ),
    status,
  );
}

function openSnapshot() {
  openDialog("Open a snapshot file", [{ name: "path", label: "File", value: state.lastSnapshot, required: true }], "Open", async (v) => {
    const range = await call("manager_open_snapshot", { path: v.path });
    state.preset = "custom";
    state.from = range.from_ms;
    state.to = range.to_ms;
    state.drill = null;
    state.machine = null;
    toast("Snapshot opened", v.path);
    await load();
  });
}

async function saveSnapshot() {
  state.saving = { done: 0, total: 0, estimated_bytes: 0 };
  draw();
  try {
    const saved = await call("manager_save_snapshot", { request: request() });
    state.lastSnapshot = saved.path;
    window.__fwManager.snapshots.push(saved.path);
    const held = `${saved.size}, ${saved.machine_trends} machine trends`;
    toast("Snapshot saved", `${saved.path} (${held})${saved.notice ? ` — ${saved.notice}` : ""}`, saved.notice ? "error" : "info");
  } catch (e) {
    window.__fwManager.errors.push(errorText(e));
    toast("The snapshot was not saved", errorText(e), "error");
  } finally {
    state.saving = null;
    draw();
  }
}

/** "Saving snapshot: 40 of 120 answers (about 12.3 MB)", with a button to stop. */
function savingLine() {
  const s = state.saving;
  if (!s) return null;
  const text = s.total
    ? `Saving the snapshot: ${s.done} of ${s.total} answers of the cloud (about ${humanBytes(s.estimated_bytes)})`
    : "Saving the snapshot: asking the cloud what the scope holds…";
  return el(
    "div.manager-saving",
    { id: "manager-saving", role: "status" },
    el("progress", { max: String(Math.max(s.total, 1)), value: String(s.done) }),
    el("span", { id: "manager-saving-text", text }),
    el("button.small", { id: "manager-cancel-snapshot", text: "Cancel", onclick: () => call("manager_cancel_snapshot") }),
  );
}

function humanBytes(n) {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} bytes`;
}

async function exportAs(what, format) {
  try {
    const path = await call("manager_export", { request: request(), what, format });
    window.__fwManager.exports.push({ what, format, path });
    toast(`Exported ${format.toUpperCase()}`, path);
  } catch (e) {
    window.__fwManager.errors.push(errorText(e));
    toast("Export failed", errorText(e), "error");
  }
}

function exportButtons(what) {
  return el(
    "div.exports",
    {},
    ["png", "svg", "csv"].map((f) => el("button.small", { "data-export": `${what}:${f}`, text: f.toUpperCase(), onclick: () => exportAs(what, f) })),
  );
}

function select(id, options, value, onchange) {
  const s = el("select", { id }, options.map(([v, t]) => el("option", { value: String(v), text: t })));
  s.value = String(value);
  s.addEventListener("change", () => onchange(s.value));
  return s;
}

function toLocalInput(ms) {
  if (!ms) return "";
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function controls(v) {
  const presets = el(
    "div.presets",
    {},
    [["day", "Day"], ["week", "Week"], ["month", "Month"], ["custom", "Custom"]].map(([p, t]) =>
      el("button.small", {
        "data-preset": p,
        "aria-pressed": state.preset === p ? "true" : "false",
        text: t,
        onclick: () => {
          state.preset = p;
          if (p === "custom" && !state.from) {
            state.from = v.range.from_ms;
            state.to = v.range.to_ms;
          }
          load();
        },
      }),
    ),
  );
  const from = el("input", { id: "manager-from", type: "datetime-local", value: toLocalInput(state.from) });
  const to = el("input", { id: "manager-to", type: "datetime-local", value: toLocalInput(state.to) });
  const custom = el(
    "span.custom",
    { hidden: state.preset !== "custom" },
    from,
    " – ",
    to,
    el("button.small", {
      id: "manager-apply",
      text: "Apply",
      onclick: () => {
        state.from = new Date(from.value).getTime();
        state.to = new Date(to.value).getTime();
        load();
      },
    }),
  );
  const plants = v.plants.map((p) => [p.plant, `${p.plant_id} ${p.name}`]);
  const compare = select(
    "manager-compare",
    [["plants", "Plants side by side"], ["previous", "This period against the previous one"], ["two_plants", "One plant against another"]],
    state.compare,
    (x) => {
      state.compare = x;
      if (x === "two_plants" && plants.length > 1) {
        state.a = state.a || plants[0][0];
        state.b = state.b || plants[1][0];
      }
      load();
    },
  );
  const two =
    state.compare === "two_plants" && plants.length
      ? el(
          "span.two",
          {},
          select("manager-plant-a", plants, state.a, (x) => ((state.a = Number(x)), load())),
          " against ",
          select("manager-plant-b", plants, state.b, (x) => ((state.b = Number(x)), load())),
        )
      : null;
  return el(
    "div.manager-controls",
    {},
    presets,
    custom,
    select("manager-metric", METRICS, state.metric, (x) => ((state.metric = x), load())),
    compare,
    two,
  );
}

function crumbs(v) {
  const parts = [el("a", { href: "#/manager", id: "crumb-all", text: "All plants", onclick: (e) => (e.preventDefault(), (state.drill = null), (state.machine = null), (state.line = null), load()) })];
  if (state.drill) {
    const p = v.plants.find((x) => x.plant === state.drill.plant);
    parts.push(" › ", el("span", { id: "crumb-plant", text: p ? `${p.plant_id} ${p.name}` : `P${state.drill.plant}` }));
    parts.push(
      " ",
      select("manager-by", [["line", "by line"], ["machine_type", "by machine type"]], state.drill.by, (x) => {
        state.drill = { ...state.drill, by: x };
        load();
      }),
    );
  }
  if (state.machine) parts.push(" › ", el("span", { id: "crumb-machine", text: state.machine }));
  return el("nav.crumbs", {}, parts);
}

function table(v) {
  const head = el("tr", {}, v.table.columns.map((c) => el("th", { text: c })));
  const rows = v.table.rows.map((cells, i) => {
    const s = v.summaries[i];
    const attrs = state.drill ? { "data-group": s.group } : { "data-plant": String(s.plant), tabindex: "0", title: "Open this plant's lines" };
    const tr = el("tr", attrs, cells.map((c) => el("td", { text: c })));
    if (!state.drill) {
      tr.addEventListener("click", () => {
        state.drill = { plant: s.plant, by: "line" };
        state.machine = null;
        load();
      });
    } else if (state.drill.by === "line") {
      tr.addEventListener("click", () => {
        state.line = s.group;
        draw();
      });
    }
    return tr;
  });
  return el("table.manager-table", { id: "manager-table" }, el("thead", {}, head), el("tbody", {}, rows));
}

function machines(v) {
  if (!state.drill) return null;
  const list = v.machines.filter((m) => !state.line || m.line_id === state.line);
  if (!list.length) return null;
  return el(
    "div.card",
    { id: "manager-machines" },
    el("h2", { text: state.line ? `Machines of ${state.line}` : "Machines" }),
    el(
      "div.machine-list",
      {},
      list.slice(0, 200).map((m) =>
        el("button.small", {
          "data-machine": m.machine_id,
          text: `${m.machine_id} · ${m.machine_type}`,
          onclick: () => {
            state.machine = m.machine_id;
            draw();
          },
        }),
      ),
    ),
  );
}

/** Fills the trend card with the open machine's charts (draw() makes the card). */
async function showTrend(machineId) {
  const box = root && root.querySelector("#manager-trend");
  if (box) box.replaceChildren(el("p.muted", { text: `Loading ${machineId}…` }));
  try {
    const t = await call("manager_machine_trend", { machineId, request: request() });
    const box2 = root && root.querySelector("#manager-trend");
    if (!box2 || state.machine !== machineId) return;
    box2.replaceChildren(
      el("h2", { text: `${machineId}: ${t.resolution} resolution` }),
      ...t.svgs.map((svg, i) => svgImage(svg, `manager-trend-${i}`, t.charts[i].stamp.title)),
    );
  } catch (e) {
    const box2 = root && root.querySelector("#manager-trend");
    if (box2) box2.replaceChildren(el("p.error", { text: errorText(e) }));
  }
}

function draw() {
  if (!root) return;
  const v = state.view;
  const badge = el("div.badge", { id: "manager-badge", role: "status" }, el("span.dot"), el("span.badge-text"));
  const isSnapshot = v && v.source.kind === "snapshot";
  const head = el(
    "div.manager-head",
    {},
    el("h1", { text: "Plants" }),
    badge,
    el("span.muted", { id: "manager-source", "data-source": v ? v.source.kind : "" }, v ? sourceText(v) : "Loading…"),
    el("span.spacer"),
    el("button.small", { id: "manager-report", "data-export": "report:png", text: "One-page report (PNG)", onclick: () => exportAs("report", "png"), disabled: !v }),
    el("button.small", { id: "manager-save-snapshot", text: "Save snapshot", onclick: saveSnapshot, disabled: !v || !!state.saving }),
    el("button.small", { id: "manager-open-snapshot", text: "Open snapshot…", onclick: openSnapshot }),
    isSnapshot
      ? el("button.small", { id: "manager-close-snapshot", text: "Close snapshot", onclick: async () => (await call("manager_close_snapshot"), load()) })
      : null,
  );
  const children = [head, savingLine(), el("p.error", { id: "manager-error" })].filter(Boolean);
  if (v && !v.configured) {
    children.push(connectForm());
  } else if (v) {
    if (v.notice) children.push(el("p.muted", { id: "manager-notice", text: v.notice }));
    children.push(
      controls(v),
      crumbs(v),
      el("p.muted", { id: "manager-range", text: v.range_label }),
      el("div.card", { id: "manager-chart-card" }, svgImage(v.svg, "manager-chart", v.chart.stamp.title), exportButtons("chart")),
      el("div.card", { id: "manager-table-card" }, table(v), exportButtons("table")),
    );
    const m = machines(v);
    if (m) children.push(m);
    children.push(el("div.card", { id: "manager-trend", hidden: !state.machine }));
  }
  root.replaceChildren(...children);
  if (v && v.link && !state.link) state.link = v.link;
  renderBadge();
  if (state.machine && v) showTrend(state.machine);
}

export function onKey() {
  return false;
}
