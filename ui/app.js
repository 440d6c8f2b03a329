// The page: holds what the app pushed, routes between screens, keeps the top bar
// (connection badge, pending commands, clock) current, and handles the keyboard.
// All data and actions come from the app's commands and its `update` event.

import { call, listen, el, clockTime, dateTime, errorText } from "./util.js";
import * as floorView from "./views/floor.js";
import * as anomaliesView from "./views/anomalies.js";
import * as machineView from "./views/machine.js";
import * as maintenanceView from "./views/maintenance.js";
import * as settingsView from "./views/settings.js";
import * as managerView from "./views/manager.js";
import * as timetravel from "./timetravel.js";

/** Everything the screens draw from, keyed for cheap updates. */
export const store = {
  plant: null,
  plantStatus: null,
  lines: new Map(),
  lineStatus: new Map(),
  machines: new Map(),
  status: new Map(),
  anomalies: new Map(),
  maintenance: new Map(),
  // The maintenance track record by "scope id model_version".
  trackRecord: new Map(),
  nodeTasks: new Map(),
  link: { state: "connecting" },
  asOf: null,
  synced: 0,
  commands: [],
  configured: true,
  user: null,
  settingsError: null,
  theme: "system",
  // The plant at an instant of the past while time travel shows one (`null`: live), and
  // its sensors by id.
  replay: null,
  replaySensors: null,
};

// Render timings, read by the benchmark: { rows, ms } per applied update.
window.__fwPerf = { floor: [], updates: 0 };

const views = {
  floor: floorView,
  anomalies: anomaliesView,
  machine: machineView,
  maintenance: maintenanceView,
  settings: settingsView,
  manager: managerView,
};
let current = null;
let currentName = null;

function setAll(map, rows, key) {
  map.clear();
  for (const r of rows) map.set(r[key], r);
}

function loadFloor(f) {
  store.plant = f.plant;
  store.plantStatus = f.plant_status;
  setAll(store.lines, f.lines, "line_id");
  setAll(store.lineStatus, f.line_status, "id");
  setAll(store.machines, f.machines, "machine_id");
  setAll(store.status, f.machine_status, "machine_id");
  setAll(store.anomalies, f.anomalies, "anomaly_id");
  setAll(store.maintenance, f.maintenance, "machine_id");
  store.trackRecord.clear();
  for (const r of f.track_record) store.trackRecord.set(trackKey(r), r);
  setAll(store.nodeTasks, f.node_tasks || [], "task");
  store.link = f.link;
  store.asOf = f.as_of_ms;
  store.synced = f.synced;
  store.commands = f.commands;
  store.configured = f.configured;
  store.user = f.user;
  store.settingsError = f.settings_error;
}

function merge(changes) {
  if (changes.plant.length) store.plant = changes.plant[changes.plant.length - 1];
  if (changes.plant_status.length) store.plantStatus = changes.plant_status[changes.plant_status.length - 1];
  for (const r of changes.lines) store.lines.set(r.line_id, r);
  for (const r of changes.line_status) store.lineStatus.set(r.id, r);
  for (const r of changes.machines) store.machines.set(r.machine_id, r);
  for (const r of changes.machine_status) store.status.set(r.machine_id, r);
  for (const r of changes.anomalies) store.anomalies.set(r.anomaly_id, r);
  for (const r of changes.maintenance) store.maintenance.set(r.machine_id, r);
  for (const r of changes.track_record) store.trackRecord.set(trackKey(r), r);
  for (const r of changes.node_tasks || []) store.nodeTasks.set(r.task, r);
}

/** Shows the plant as it was at an instant: the live rows give way to that instant's. */
export function enterReplay(f) {
  store.replay = f;
  store.plantStatus = f.plant_status;
  setAll(store.lineStatus, f.line_status, "id");
  setAll(store.status, f.machine_status, "machine_id");
  setAll(store.anomalies, f.anomalies, "anomaly_id");
  setAll(store.maintenance, f.maintenance, "machine_id");
  store.replaySensors = new Map(f.sensor_state.map((s) => [s.sensor_id, s]));
  document.body.classList.add("replay");
  renderAnomalyCount();
  route();
}

/** Back to the live plant: everything is read again. */
export async function leaveReplay() {
  store.replay = null;
  store.replaySensors = null;
  document.body.classList.remove("replay");
  await reloadFloor();
}

function trackKey(r) {
  return `${r.scope} ${r.id} ${r.model_version}`;
}

/** The track-record rows of one scope (`machine`, `machine_type`, `plant`) and id, every model version. */
export function trackOf(scope, id) {
  const rows = [];
  for (const r of store.trackRecord.values()) if (r.scope === scope && r.id === id) rows.push(r);
  return rows;
}

/** Commands not yet applied, by the anomaly or machine they concern. */
export function pendingFor(target) {
  return store.commands.filter((c) => {
    const cmd = c.command;
    return (cmd.anomaly_id || cmd.machine_id) === target;
  });
}

// ---- top bar ----

function renderLink() {
  const badge = document.getElementById("link-badge");
  const text = document.getElementById("link-text");
  const banner = document.getElementById("banner");
  const l = store.link || { state: "connecting" };
  badge.dataset.state = l.state;
  const asOf = l.as_of_ms || store.asOf;
  let label;
  switch (l.state) {
    case "live":
      label = "Live";
      break;
    case "connecting":
      label = asOf ? `Connecting… data as of ${clockTime(asOf)}` : "Connecting…";
      break;
    case "reconnecting":
      label = `Reconnecting… data as of ${clockTime(asOf)}`;
      break;
    case "offline":
      label = `Offline — data as of ${clockTime(asOf)}`;
      break;
    case "not_configured":
      // Nothing to say about a plant that is not set up beyond that.
      label = "No plant set up";
      break;
    default:
      label = "Not connected";
  }
  text.textContent = label;
  badge.title = l.reason ? `Last error: ${l.reason}` : l.state === "live" ? `Up to date (log position ${l.position})` : "";
  if (l.state === "offline" || l.state === "reconnecting") {
    banner.hidden = false;
    const when = l.retry_at_ms ? ` Next attempt at ${clockTime(l.retry_at_ms)}.` : "";
    banner.textContent =
      `${l.state === "offline" ? "Offline" : "The plant is not answering"}: showing the plant as of ${clockTime(asOf)}. ` +
      `Actions are queued and sent when the plant is reachable again.${when}`;
  } else {
    banner.hidden = true;
  }
}

// A plant task that is down (anomaly detection, above all) makes a calm floor a lie:
// say so above everything, with the time it stopped and its last error.
function renderTasks() {
  const banner = document.getElementById("tasks-banner");
  const down = [...store.nodeTasks.values()].filter((t) => t.down);
  banner.hidden = down.length === 0;
  banner.replaceChildren(
    ...down.map((t) =>
      el("div", { class: "task-down", "data-task": t.task, title: t.last_error || "" }, [
        `${t.label.charAt(0).toUpperCase()}${t.label.slice(1)} stopped since ` +
          (Date.now() - t.since_ms > 86400000 ? dateTime(t.since_ms) : clockTime(t.since_ms)),
        t.task === "monitor" ? ": new anomalies are not being detected." : ".",
      ]),
    ),
  );
}

function renderPending() {
  const btn = document.getElementById("pending");
  const failed = store.commands.filter((c) => c.state === "failed").length;
  const waiting = store.commands.length - failed;
  btn.hidden = store.commands.length === 0;
  btn.classList.toggle("failed", failed > 0);
  const parts = [];
  if (waiting) parts.push(`${waiting} pending`);
  if (failed) parts.push(`${failed} refused`);
  btn.textContent = parts.join(" · ");
}

function renderUser() {
  const btn = document.getElementById("user");
  const u = store.user;
  btn.hidden = !store.configured;
  btn.classList.toggle("signed-out", !u);
  btn.textContent = !u ? "Sign in" : u.name ? [u.name, u.role].filter(Boolean).join(" · ") : "Signed in (not yet confirmed)";
}

/** Asks for a person's token and signs in with it; `then` runs after a success. */
export function openSignIn(then) {
  openDialog(
    "Sign in",
    [{ name: "token", label: "Your token (floorwatch user add prints it once)", type: "password", required: true }],
    "Sign in",
    async (v) => {
      const user = await call("sign_in", { token: v.token, connection: null });
      store.user = user;
      renderUser();
      toast(user.confirmed ? `Signed in as ${user.name}` : "Token kept", user.confirmed ? user.role : "The plant could not be asked; it will check the token with every action.");
      if (then) then();
    },
  );
}

function renderAnomalyCount() {
  let open = 0;
  for (const a of store.anomalies.values()) if (a.state === "new") open++;
  document.getElementById("anomaly-count").textContent = open ? String(open) : "";
}

function renderPlantName() {
  const p = store.plant;
  document.getElementById("plant-name").textContent = p ? `${p.name} (${p.plant_id})` : "";
}

function tickClock() {
  document.getElementById("clock").textContent = clockTime(Date.now());
}

// ---- theme ----

export function applyTheme(theme) {
  store.theme = theme || "system";
  const dark =
    store.theme === "dark" ||
    (store.theme === "system" && window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

export function isDark() {
  return document.documentElement.dataset.theme === "dark";
}

// ---- toasts and dialogs ----

export function toast(title, body, kind = "info", ms = 8000) {
  const t = el(`div.toast.${kind}`, { role: kind === "info" ? "status" : "alert" }, el("b", { text: title }), body || "");
  document.getElementById("toasts").append(t);
  setTimeout(() => t.remove(), ms);
}

/**
 * Opens a form dialog. `fields`: [{ name, label, type: "textarea"|"datetime-local"|"select", value, options, required }].
 * `submit(values)` may throw { message }: the dialog stays open and shows it.
 */
export function openDialog(title, fields, submitLabel, submit) {
  const dialog = document.getElementById("dialog");
  dialog.replaceChildren();
  const error = el("div.error", { role: "alert" });
  const inputs = {};
  const form = el("form", { method: "dialog" }, el("h2", { text: title }));
  for (const f of fields) {
    let input;
    if (f.type === "textarea") input = el("textarea", { name: f.name, id: `f-${f.name}` });
    else if (f.type === "select")
      input = el("select", { name: f.name, id: `f-${f.name}` }, f.options.map(([v, t]) => el("option", { value: v, text: t })));
    else input = el("input", { name: f.name, id: `f-${f.name}`, type: f.type || "text" });
    if (f.value !== undefined) input.value = f.value;
    if (f.required) input.required = true;
    inputs[f.name] = input;
    form.append(el("label", { for: `f-${f.name}`, text: f.label }), input);
  }
  const submitBtn = el("button.primary", { type: "submit", id: "dialog-submit", text: submitLabel });
  form.append(
    error,
    el("div.buttons", {}, el("button", { type: "button", text: "Cancel", onclick: () => dialog.close() }), submitBtn),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = {};
    for (const [k, v] of Object.entries(inputs)) values[k] = v.value;
    submitBtn.disabled = true;
    try {
      await submit(values);
      dialog.close();
    } catch (err) {
      error.textContent = errorText(err);
    } finally {
      submitBtn.disabled = false;
    }
  });
  dialog.append(form);
  dialog.showModal();
  const first = form.querySelector("textarea, input, select");
  if (first) first.focus();
}

function showCommands() {
  const dialog = document.getElementById("dialog");
  dialog.replaceChildren();
  const table = (id, rows) =>
    el("table", { id }, el("thead", {}, el("tr", {}, el("th", { text: "Action" }), el("th", { text: "State" }), el("th"))), el("tbody", {}, rows));
  const waiting = [];
  const failed = [];
  for (const c of store.commands) {
    if (c.state === "failed") {
      const dismiss = el("button.small", {
        text: "Dismiss",
        onclick: async () => {
          await call("dismiss", { commandId: c.command_id }).catch((e) => toast("Could not dismiss", errorText(e), "error"));
          showCommands();
        },
      });
      failed.push(
        el(
          "tr",
          { "data-command": c.command_id },
          el("td", { text: c.label }),
          el("td", {}, el("span.tag-failed", { text: "Refused" }), el("div.failed-reason", { text: c.error ? c.error.message : "" })),
          el("td.actions", {}, dismiss),
        ),
      );
    } else {
      const text =
        c.state === "sent" ? "Accepted, waiting for the plant's read models" : c.error ? `Waiting (${c.error.message})` : "Waiting to be sent";
      waiting.push(el("tr", { "data-command": c.command_id }, el("td", { text: c.label }), el("td", {}, el("span.tag-pending", { text })), el("td")));
    }
  }
  dialog.append(
    el("h2", { text: "Actions not yet applied" }),
    waiting.length ? table("waiting-list", waiting) : el("p.muted", { text: "Nothing is waiting." }),
    failed.length ? el("h2", { text: "Refused by the plant" }) : "",
    failed.length ? el("p.muted", { text: "These were not carried out and will not be sent again; the actions after them went ahead." }) : "",
    failed.length ? table("failed-list", failed) : "",
    el("div.buttons", {}, el("button", { text: "Close", onclick: () => dialog.close() })),
  );
  if (!dialog.open) dialog.showModal();
}

function showShortcuts() {
  const dialog = document.getElementById("dialog");
  const rows = [
    ["1 – 5", "Plant floor, anomalies, maintenance, settings, managers' view"],
    ["Arrow keys", "Move between machines, rows and ranges"],
    ["Enter", "Open the selected machine"],
    ["a / s / n", "Acknowledge, shelve, add a note (anomalies)"],
    ["/", "Search the anomaly list"],
    ["Esc", "Close a dialog, or go back"],
    ["?", "This help"],
  ];
  dialog.replaceChildren(
    el("h2", { text: "Keyboard" }),
    el("div.shortcuts", {}, rows.flatMap(([k, t]) => [el("kbd", { text: k }), el("span", { text: t })])),
    el("div.buttons", {}, el("button", { text: "Close", onclick: () => dialog.close() })),
  );
  dialog.showModal();
}

// ---- routing ----

function route() {
  const hash = location.hash || "#/floor";
  const [, name, param] = hash.match(/^#\/(\w+)(?:\/(.+))?$/) || [null, "floor", null];
  const view = views[name] ? name : "floor";
  if (current && current.unmount) current.unmount();
  currentName = view;
  current = views[view];
  for (const tab of document.querySelectorAll(".tabs a")) {
    const selected = tab.dataset.view === view || (view === "machine" && tab.dataset.view === "floor");
    tab.setAttribute("aria-selected", selected ? "true" : "false");
  }
  const root = document.getElementById("view");
  root.replaceChildren();
  root.scrollTop = 0;
  current.mount(root, param ? decodeURIComponent(param) : null);
  timetravel.onRoute(view);
}

export function go(path) {
  if (location.hash === path) route();
  else location.hash = path;
}

// ---- updates ----

// Updates that arrive while the whole floor is being fetched. The floor may have been
// read before or after any of them, so they are applied again, in order, once it has
// loaded: a delta only sets rows to what they became, and the last link change wins.
// Dropping them instead could leave the badge on an old state (a "live" that came
// before the answer would be overwritten by the "connecting" inside it).
let held = null;

function receive(u) {
  if (held) held.push(u);
  else onUpdate(u);
}

/** Fetches the whole floor and loads it, then the updates that came meanwhile. */
async function fetchFloor() {
  held = [];
  try {
    for (;;) {
      loadFloor(await call("floor"));
      // Another plant replaced the picture while this one was read: read it again.
      if (!held.some((u) => u.type === "reset")) break;
      held = [];
    }
  } finally {
    const replay = held;
    held = null;
    for (const u of replay) onUpdate(u);
  }
}

async function reloadFloor() {
  await fetchFloor();
  renderAll();
  route();
}

function renderAll() {
  renderLink();
  renderUser();
  renderTasks();
  renderPending();
  renderAnomalyCount();
  renderPlantName();
}

function onUpdate(u) {
  // The past does not change: live changes are read again on the way back to live.
  if (store.replay && (u.type === "delta" || u.type === "reset")) return;
  switch (u.type) {
    case "delta": {
      const t0 = performance.now();
      const rows = u.changes.machine_status.length + u.changes.sensor_state.length + u.changes.anomalies.length;
      merge(u.changes);
      store.synced = u.synced;
      store.asOf = u.as_of_ms;
      if (current && current.onDelta) current.onDelta(u.changes);
      if (u.changes.anomalies.length) renderAnomalyCount();
      if (u.changes.plant.length) renderPlantName();
      if (u.changes.node_tasks && u.changes.node_tasks.length) renderTasks();
      window.__fwPerf.updates++;
      if (currentName === "floor" && u.changes.machine_status.length) {
        requestAnimationFrame(() => {
          const perf = window.__fwPerf.floor;
          perf.push({ rows, ms: performance.now() - t0, since_apply_ms: Date.now() - u.as_of_ms, at: Date.now() });
          if (perf.length > 500) perf.splice(0, perf.length - 500);
        });
      }
      break;
    }
    case "link":
      store.link = u.link;
      renderLink();
      if (current && current.onLink) current.onLink();
      break;
    case "commands": {
      const before = new Map(store.commands.map((c) => [c.command_id, c.state]));
      store.commands = u.commands;
      for (const c of u.commands) {
        if (c.state === "failed" && before.get(c.command_id) !== "failed") {
          toast(`${c.label} was refused`, c.error ? c.error.message : "", "error", 12000);
        }
      }
      renderPending();
      if (current && current.onCommands) current.onCommands();
      break;
    }
    case "critical":
      toast(`Critical anomaly on ${u.anomaly.machine_id}`, u.anomaly.explanation, "critical", 15000);
      break;
    case "reset":
      reloadFloor();
      break;
    case "manager_link":
    case "changed":
    case "snapshot_progress":
      managerView.onManager(u);
      break;
  }
}

// ---- keyboard ----

function onKey(e) {
  const dialog = document.getElementById("dialog");
  if (dialog.open) return;
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName);
  if (typing) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const tabs = { 1: "#/floor", 2: "#/anomalies", 3: "#/maintenance", 4: "#/settings", 5: "#/manager" };
  if (tabs[e.key]) {
    e.preventDefault();
    go(tabs[e.key]);
    return;
  }
  if (e.key === "?") {
    e.preventDefault();
    showShortcuts();
    return;
  }
  if (current && current.onKey && current.onKey(e)) {
    e.preventDefault();
  }
}

// ---- start ----

async function start() {
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyTheme(store.theme));
  document.getElementById("pending").addEventListener("click", showCommands);
  document.getElementById("user").addEventListener("click", () => (store.user ? go("#/settings") : openSignIn()));
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  tickClock();
  setInterval(tickClock, 1000);
  await listen("update", receive);
  const [, settings, managerSettings] = await Promise.all([fetchFloor(), call("settings"), call("manager_settings")]);
  applyTheme(settings.settings.theme);
  timetravel.mount(document.getElementById("timebar"), document.getElementById("replay-banner"));
  renderAll();
  // The profile chosen last: the managers' view, or the plant floor.
  if (managerSettings.open_at_start && !location.hash) location.hash = "#/manager";
  if (!store.configured && !location.hash) location.hash = "#/floor";
  route();
  window.__fwReady = performance.now();
}

start().catch((e) => {
  document.getElementById("view").append(el("div.card.empty", {}, el("h1", { text: "The app could not start" }), el("p", { text: errorText(e) })));
});
