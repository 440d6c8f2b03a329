// Small helpers shared by the screens: calling the app, building elements, formatting.

const tauri = window.__TAURI__;

/** Calls a command of the app; errors arrive as { code, message }. */
export async function call(command, args = {}) {
  try {
    return await tauri.core.invoke(command, args);
  } catch (e) {
    if (e && typeof e === "object" && "message" in e) throw e;
    throw { code: "internal", message: String(e) };
  }
}

export function listen(event, handler) {
  return tauri.event.listen(event, (e) => handler(e.payload));
}

/** el("div.card#x", { onclick }, child, "text", …) */
export function el(spec, attrs = {}, ...children) {
  const m = spec.match(/^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i);
  const node = document.createElement((m && m[1]) || "div");
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") node.classList.add(part.slice(1));
      else node.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else if (k in node && typeof v !== "string") node[k] = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const pad = (n) => String(n).padStart(2, "0");

export function clockTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (sameDay) return `today ${hm}`;
  return `${d.toLocaleDateString(undefined, { day: "numeric", month: "short" })} ${hm}`;
}

/** "3 s", "12 min", "4 h 10 min", "2 d 3 h". */
export function age(ms, now = Date.now()) {
  if (!ms) return "—";
  let s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

export function number(v, digits = 0) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return v.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A reading with sensible precision for its size. */
export function reading(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return number(v, a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3);
}

export function days(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "—";
  return v < 10 ? number(v, 1) : number(v, 0);
}

/** "P1-L03-M042" → "L03 · M042"; keeps anything else as it is. */
export function shortMachine(id) {
  const m = /^[^-]+-(L\d+)-(M\d+)$/.exec(id || "");
  return m ? `${m[1]} · ${m[2]}` : id;
}

export function lineLabel(lineId) {
  const m = /-L(\d+)$/.exec(lineId || "");
  return m ? `Line ${m[1]}` : lineId;
}

export function errorText(e) {
  return (e && e.message) || String(e);
}
