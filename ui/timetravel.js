// Time travel: a bar on the plant floor and a machine's page to pick an instant, or scrub
// and play at 1× to 3600×, on either clock. The whole screen then shows that instant and
// says so ("as of 14:03:12, replay"), actions are disabled, and one click goes back to
// live. Also what changed between two instants and a shift's report (shown, exported as
// a PNG page and a CSV). The plant rebuilds every instant; this page only asks and shows.

import { store, go, toast, enterReplay, leaveReplay } from "./app.js";
import { call, el, clockTime, dateTime, errorText } from "./util.js";

const SPEEDS = [1, 10, 60, 600, 3600];
const CLOCKS = [
  ["happened", "as it happened"],
  ["known", "as we knew it then"],
];
/** How far back the scrubber reaches. */
const SCRUB_SPAN_MS = 24 * 3600e3;
/** The views with the time bar: where picking an instant means something. */
const BAR_VIEWS = new Set(["floor", "machine"]);
/** The plant's views: they all show the instant picked. Any other view (Settings, the
 * managers' view from the cloud) is not the plant at an instant, so going there ends
 * the replay, and the banner says so beforehand. */
const REPLAY_VIEWS = new Set(["floor", "machine", "anomalies", "maintenance"]);
/** Buttons that act on the plant: disabled while the screen shows the past. */
const ACTIONS = /^(Acknowledge|Shelve|Add note|Schedule service|Record service)/;

export const replay = { atMs: null, clock: "happened", playing: false, speed: 60, timer: null, busy: false, pending: null };

let bar = null;
let banner = null;
let observer = null;
let currentView = null;

const pad = (n) => String(n).padStart(2, "0");

/** A local `datetime-local` value with seconds. */
function localValue(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fromLocal(value) {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? ms : null;
}

function clockLabel(clock) {
  return (CLOCKS.find(([c]) => c === clock) || CLOCKS[0])[1];
}

/** Shows the plant at `atMs` (asking again once the answer in flight is in). */
export async function showInstant(atMs) {
  const now = Date.now();
  atMs = Math.min(Math.max(atMs, now - 7 * 24 * 3600e3), now);
  replay.atMs = atMs;
  if (replay.busy) {
    replay.pending = atMs;
    return;
  }
  replay.busy = true;
  try {
    const floor = await call("floor_at", { atMs, clock: replay.clock });
    // Back to live (or off the plant's views) while this answer was on its way: the past
    // is no longer wanted.
    if (replay.atMs === null || !REPLAY_VIEWS.has(currentView)) return;
    enterReplay(floor);
    renderBar();
    renderBanner();
  } catch (e) {
    stop();
    // The screen still shows the instant it showed: the bar and the banner say that one.
    if (store.replay) {
      replay.atMs = store.replay.at_ms;
      renderBar();
      renderBanner();
    }
    toast("This instant could not be shown", errorText(e), "error");
  } finally {
    replay.busy = false;
    if (replay.pending !== null) {
      const next = replay.pending;
      replay.pending = null;
      showInstant(next);
    }
  }
}

export async function backToLive() {
  stop();
  replay.atMs = null;
  replay.pending = null;
  // Leave the past first: the banner and the bar are drawn from whether it is shown.
  await leaveReplay();
  renderBar();
  renderBanner();
}

function play() {
  replay.playing = true;
  let last = Date.now();
  replay.timer = setInterval(() => {
    const t = Date.now();
    const next = replay.atMs + (t - last) * replay.speed;
    last = t;
    if (next >= Date.now()) {
      backToLive();
      return;
    }
    showInstant(next);
  }, 1000);
  renderBar();
}

function stop() {
  replay.playing = false;
  clearInterval(replay.timer);
  replay.timer = null;
}

/** Disables the buttons that act on the plant while the past is shown. */
function disableActions() {
  if (!store.replay) return;
  for (const b of document.querySelectorAll("#view button")) {
    if (ACTIONS.test(b.textContent.trim()) && !b.disabled) {
      b.disabled = true;
      b.title = "Not in the past: go back to live to act";
      b.classList.add("past");
    }
  }
}

/** Called by the page after every route: the bar is on the floor and a machine's page;
 * the past stays on the plant's views and ends anywhere else. */
export function onRoute(view) {
  currentView = view;
  if (bar) bar.hidden = !BAR_VIEWS.has(view);
  if (!REPLAY_VIEWS.has(view) && store.replay) {
    backToLive();
    toast("Back to live", "Time travel shows the plant's views: the floor, machines, anomalies and maintenance.");
    return;
  }
  if (!REPLAY_VIEWS.has(view) && replay.atMs !== null) {
    // An instant asked for but not shown yet: forget it.
    stop();
    replay.atMs = null;
    replay.pending = null;
    renderBar();
  }
  disableActions();
}

function renderBanner() {
  if (!banner) return;
  banner.hidden = !store.replay;
  if (!store.replay) return;
  const cached = store.replay.from_cache;
  const day = (ms) => dateTime(ms).replace(/ \d\d:\d\d$/, "");
  const label = cached ? clockLabel(store.replay.clock) : clockLabel(replay.clock);
  banner.classList.toggle("from-cache", Boolean(cached));
  banner.replaceChildren(
    el("span.replay-text", {
      id: "replay-text",
      text: `As of ${clockTime(replay.atMs)} (${day(replay.atMs)}), ${cached ? "from this workstation's cache" : "replay"} — ${label}`,
    }),
    cached
      ? el("span.muted", {
          id: "replay-cache",
          text:
            ` · the plant cannot be reached; ${cached.source === "answer" ? "the plant's answer kept here" : "the floor as this workstation received it"}` +
            (cached.covers.length
              ? `; the cache holds ${cached.covers
                  .slice(-3)
                  .map((c) => `${day(c.from_ms)} ${clockTime(c.from_ms)}–${clockTime(c.to_ms)}`)
                  .join(", ")}`
              : ""),
        })
      : "",
    el("span.muted", {
      id: "replay-scope",
      text: " · the floor, machines, anomalies and maintenance show this instant; actions are disabled; Settings or Managers go back to live",
    }),
    el("button.primary.small", { id: "back-to-live", text: "Back to live", onclick: backToLive }),
  );
}

function renderBar() {
  if (!bar) return;
  const at = replay.atMs ?? Date.now();
  const now = Date.now();
  const input = el("input", { id: "travel-at", type: "datetime-local", step: "1", value: localValue(at), "aria-label": "Instant to show" });
  input.addEventListener("change", () => {
    const ms = fromLocal(input.value);
    if (ms !== null) showInstant(ms);
  });
  const clock = el("select", { id: "travel-clock", "aria-label": "Clock" }, CLOCKS.map(([v, t]) => el("option", { value: v, text: t })));
  clock.value = replay.clock;
  clock.addEventListener("change", () => {
    replay.clock = clock.value;
    if (store.replay) showInstant(replay.atMs);
  });
  const scrub = el("input", {
    id: "travel-scrub",
    type: "range",
    min: String(now - SCRUB_SPAN_MS),
    max: String(now),
    step: "1000",
    value: String(at),
    "aria-label": "Scrub through the last 24 hours",
  });
  scrub.addEventListener("input", () => showInstant(Number(scrub.value)));
  const speed = el("select", { id: "travel-speed", "aria-label": "Replay speed" }, SPEEDS.map((s) => el("option", { value: String(s), text: `${s}×` })));
  speed.value = String(replay.speed);
  speed.addEventListener("change", () => (replay.speed = Number(speed.value)));
  const playBtn = el("button.small", {
    id: "travel-play",
    text: replay.playing ? "Pause" : "Play",
    onclick: () => {
      if (replay.playing) {
        stop();
        renderBar();
      } else {
        if (!store.replay) showInstant(Date.now() - 3600e3);
        play();
      }
    },
  });
  bar.replaceChildren(
    el("span.label", { text: "Time travel" }),
    input,
    clock,
    scrub,
    playBtn,
    speed,
    el("button.small", { id: "travel-changes", text: "What changed…", onclick: openChanges }),
    el("button.small", { id: "travel-report", text: "Shift report…", onclick: openReport }),
    store.replay ? el("button.small.primary", { text: "Live", onclick: backToLive }) : "",
  );
}

function rangeForm(title, defaults, run) {
  const dialog = document.getElementById("dialog");
  dialog.replaceChildren();
  const from = el("input", { id: "range-from", type: "datetime-local", step: "1", value: localValue(defaults.from) });
  const to = el("input", { id: "range-to", type: "datetime-local", step: "1", value: localValue(defaults.to) });
  const clock = el("select", { id: "range-clock" }, CLOCKS.map(([v, t]) => el("option", { value: v, text: t })));
  clock.value = replay.clock;
  const out = el("div.range-out", { id: "range-out" });
  const show = el("button.primary", {
    id: "range-go",
    text: "Show",
    onclick: async (e) => {
      e.preventDefault();
      const f = fromLocal(from.value);
      const t = fromLocal(to.value);
      if (f === null || t === null || f >= t) {
        out.replaceChildren(el("p.error", { text: "Pick a start before the end." }));
        return;
      }
      out.replaceChildren(el("p.muted", { text: "Rebuilding from the log…" }));
      try {
        await run(f, t, clock.value, out);
      } catch (err) {
        out.replaceChildren(el("p.error", { role: "alert", text: errorText(err) }));
      }
    },
  });
  dialog.append(
    el("h2", { text: title }),
    el("div.range-form", {}, el("label", { for: "range-from", text: "From" }), from, el("label", { for: "range-to", text: "To" }), to, el("label", { for: "range-clock", text: "Clock" }), clock),
    el("div.buttons", {}, el("button", { text: "Close", onclick: () => dialog.close() }), show),
    out,
  );
  dialog.showModal();
}

function openChanges() {
  const to = replay.atMs ?? Date.now();
  rangeForm("What changed", { from: to - 3600e3, to }, async (from, toMs, clock, out) => {
    const diff = await call("changes", { fromMs: from, toMs, clock });
    const rows = diff.changes.map((c) =>
      el(
        "tr",
        { "data-kind": c.kind, "data-anomaly": c.anomaly_id || "" },
        el("td", { text: `${dateTime(c.at_ms)} ${clockTime(c.at_ms)}` }),
        el("td", { text: c.kind.replaceAll("_", " ") }),
        el(
          "td",
          {},
          c.machine_id
            ? el("a", {
                href: "#",
                text: c.machine_id,
                title: "The machine as it was then",
                onclick: (e) => {
                  e.preventDefault();
                  document.getElementById("dialog").close();
                  replay.clock = clock;
                  go(`#/machine/${encodeURIComponent(c.machine_id)}`);
                  showInstant(c.at_ms);
                },
              })
            : "",
        ),
        el("td", { text: c.summary }),
      ),
    );
    out.replaceChildren(
      el("p.muted", { text: `${diff.changes.length} changes${diff.sensor_changes_not_listed ? `, and ${diff.sensor_changes_not_listed} more sensors` : ""}, ${clockLabel(clock)}` }),
      el("div.table-wrap", {}, el("table", { id: "changes-list" }, el("thead", {}, el("tr", {}, ["When", "What", "Machine", ""].map((h) => el("th", { text: h })))), el("tbody", {}, rows))),
    );
  });
}

function openReport() {
  const to = replay.atMs ?? Date.now();
  rangeForm("Shift report", { from: to - 8 * 3600e3, to }, async (from, toMs, clock, out) => {
    const view = await call("shift_report", { fromMs: from, toMs, clock });
    const lines = view.lines.map((l) => (l.startsWith("# ") ? el("h3", { text: l.slice(2) }) : el("div", { text: l })));
    const exportBtn = el("button", {
      id: "export-report",
      text: "Export PNG + CSV",
      onclick: async () => {
        try {
          const written = await call("export_shift_report", { fromMs: from, toMs, clock });
          out.querySelector("#export-done")?.remove();
          out.append(el("p#export-done", { text: `Written: ${written.png} and ${written.csv}` }));
          toast("Shift report exported", `${written.png}\n${written.csv}`);
        } catch (err) {
          toast("Could not export the report", errorText(err), "error");
        }
      },
    });
    out.replaceChildren(el("div.report", { id: "report-lines" }, lines), el("div.buttons", {}, exportBtn));
  });
}

/** Puts the bar and the banner in place. */
export function mount(barNode, bannerNode) {
  bar = barNode;
  banner = bannerNode;
  renderBar();
  renderBanner();
  observer = new MutationObserver(disableActions);
  observer.observe(document.getElementById("view"), { childList: true, subtree: true });
}
