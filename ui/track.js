// How past maintenance predictions turned out, as the plant's track record read model says:
// sums over model versions and the words a planner reads. No rule is applied here: which
// failure was caught in time, which alert was false, which interval held the truth are the
// plant's answers (`readmodel.track_record`); this only adds them up.

import { el, days, number } from "./util.js";

/** Adds up rows of one scope (every model version). */
export function total(rows) {
  const t = { failures: 0, caught: 0, watched: 0, caught_watched: 0, scored: 0, covered: 0, abs_error: 0, false_hours: 0, judged_days: 0, versions: [] };
  for (const r of rows) {
    t.failures += r.failures;
    t.caught += r.caught;
    t.watched += r.watched;
    t.caught_watched += r.caught_watched;
    t.scored += r.scored;
    t.covered += r.covered;
    t.abs_error += (r.mae_days ?? 0) * r.scored;
    // Back from the rate to the time falsely flagged, to weigh versions by time judged.
    t.false_hours += ((r.false_alert_hours_per_1000_machine_days ?? 0) * r.judged_days) / 1000;
    t.judged_days += r.judged_days;
    if (r.model_version) t.versions.push(r.model_version);
  }
  t.coverage = t.scored ? t.covered / t.scored : null;
  t.mae = t.scored ? t.abs_error / t.scored : null;
  t.false_per_1000 = t.judged_days ? (1000 * t.false_hours) / t.judged_days : null;
  return t;
}

const pct = (v) => (v === null || v === undefined ? "—" : `${Math.round(100 * v)} %`);

/** One line: failures warned of in time, how often intervals held, false alerts. */
export function sentence(t) {
  if (!t.failures && !t.scored && !t.judged_days) return "no record yet";
  const parts = [t.failures ? `${t.caught} of ${t.failures} failures alerted 3–7 days ahead` : "no failure yet"];
  if (t.scored) parts.push(`intervals held ${pct(t.coverage)}`, `off by ${days(t.mae)} d`);
  if (t.false_per_1000 !== null) parts.push(`${number(t.false_per_1000, 0)} false alert-hours per 1,000 machine-days`);
  return parts.join(" · ");
}

/** A short cell for a list: "1/1 in time · 92 %". */
export function short(t) {
  if (!t.failures && !t.scored) return "—";
  const caught = t.failures ? `${t.caught}/${t.failures} in time` : "no failure";
  return t.scored ? `${caught} · ${pct(t.coverage)}` : caught;
}

/** A table of rows by model version. */
export function versionTable(rows) {
  const sorted = [...rows].sort((a, b) => a.model_version.localeCompare(b.model_version));
  return el(
    "table.track",
    {},
    el("thead", {}, el("tr", {}, ["Model", "Failures alerted 3–7 d ahead", "Interval held (14 d before failures)", "Off by", "False alert-hours / 1,000 machine-days"].map((t) => el("th", { text: t })))),
    el(
      "tbody",
      {},
      sorted.map((r) =>
        el(
          "tr",
          {},
          el("td", { text: r.model_version || "no prediction" }),
          el("td.num", { text: r.failures ? `${r.caught} of ${r.failures}` : "—" }),
          el("td.num", { text: r.scored ? `${pct(r.coverage)} of ${r.scored}` : "—" }),
          el("td.num", { text: r.mae_days === null || r.mae_days === undefined ? "—" : `${days(r.mae_days)} d` }),
          el("td.num", { text: r.false_alert_hours_per_1000_machine_days === null || r.false_alert_hours_per_1000_machine_days === undefined ? "—" : number(r.false_alert_hours_per_1000_machine_days, 0) }),
        ),
      ),
    ),
  );
}

/** What was predicted at a lead before a failure: "6.1 d (3.6–9.1), was 5". */
export function atLead(f, lead) {
  const p = (f.at_leads || []).find((l) => l.lead_days === lead);
  if (!p) return "—";
  const held = p.lower_days <= p.actual_days && p.actual_days <= p.upper_days;
  return el("span", { class: held ? "" : "missed", title: held ? "the interval held" : "outside the interval" }, `${days(p.predicted_days)} d (${days(p.lower_days)}–${days(p.upper_days)}), was ${days(p.actual_days)}`);
}
