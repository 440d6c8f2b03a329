// Settings: the plant connection, who is signed in (their own token), the theme,
// notifications, and the demo factory.

import { applyTheme, toast, openSignIn } from "../app.js";
import { call, el, errorText } from "../util.js";

let root = null;

function field(label, input, hint) {
  return [el("label", { for: input.id, text: label }), input, hint ? el("div.hint", { text: hint }) : null];
}

export async function mount(node) {
  root = node;
  let view;
  try {
    view = await call("settings");
  } catch (e) {
    root.append(el("p", { text: errorText(e) }));
    return;
  }
  const s = view.settings;
  const input = (id, value, type = "text") => el("input", { id, type, value: value || "", autocomplete: "off", spellcheck: "false" });
  const plant = input("set-plant", s.connection.plant);
  const db = input("set-database", s.connection.database_url, "password");
  const cmd = input("set-command", s.connection.command_url);
  const who = s.connection.token
    ? s.connection.user
      ? `${s.connection.user} (${s.connection.role})`
      : "a token the plant has not confirmed yet"
    : "nobody: actions cannot be sent";
  const signedIn = el("p", { id: "signed-in-as" }, "Signed in as ", el("b", { text: who }));
  const again = () => {
    root && root.replaceChildren();
    mount(node);
  };
  const signIn = el("button", { id: "settings-sign-in", text: s.connection.token ? "Sign in as someone else" : "Sign in", onclick: () => openSignIn(again) });
  const signOut = el("button", {
    id: "settings-sign-out",
    text: "Sign out",
    disabled: !s.connection.token,
    onclick: async () => {
      try {
        await call("sign_out");
        toast("Signed out", "Actions wait until someone signs in.");
        again();
      } catch (e) {
        status.textContent = errorText(e);
      }
    },
  });
  const theme = el("select", { id: "set-theme" }, [["system", "Follow the desktop"], ["light", "Light"], ["dark", "Dark"]].map(([v, t]) => el("option", { value: v, text: t })));
  theme.value = s.theme;
  theme.addEventListener("change", () => applyTheme(theme.value));
  const notify = el("input", { id: "set-notify", type: "checkbox", checked: s.notify_critical });
  const status = el("p.muted", { id: "settings-status" });
  const save = el("button.primary", {
    id: "settings-save",
    text: "Save",
    onclick: async () => {
      const next = {
        ...s,
        connection: { ...s.connection, plant: plant.value.trim(), database_url: db.value.trim(), command_url: cmd.value.trim() },
        theme: theme.value,
        notify_critical: notify.checked,
      };
      try {
        await call("save_settings", { settings: next });
        status.textContent = "Saved.";
        toast("Settings saved", "");
      } catch (e) {
        status.textContent = errorText(e);
      }
    },
  });
  const demo = el("button", {
    id: "settings-demo",
    text: "Start the demo factory on this machine",
    disabled: !view.demo_available,
    title: view.demo_available ? "Runs floorwatch up and connects to its plant 1" : "The floorwatch program was not found",
    onclick: async () => {
      demo.disabled = true;
      status.textContent = "Starting the demo factory… this can take a minute the first time.";
      try {
        await call("start_demo");
        status.textContent = "Connected to the demo factory.";
        root && root.replaceChildren();
        mount(node);
      } catch (e) {
        status.textContent = errorText(e);
        demo.disabled = false;
      }
    },
  });
  root.append(
    el("h1", { text: "Settings" }),
    el(
      "section.card",
      {},
      el("h2", { text: "Plant connection" }),
      el(
        "div.form",
        {},
        field("Plant", plant, "The plant's id, e.g. P1."),
        field("Read-model database", db, "postgresql://floorwatch_reader:password@host:port/database (read-only role)"),
        field("Command API", cmd, "The plant node's URL, e.g. http://plant-node:8080"),
      ),
    ),
    el(
      "section.card.section",
      {},
      el("h2", { text: "You" }),
      signedIn,
      el("p.muted", { text: "Every acknowledgement, note and service record is sent with your own token; the plant writes your name into its events." }),
      el("div.button-row", {}, signIn, signOut),
    ),
    el(
      "section.card.section",
      {},
      el("h2", { text: "This screen" }),
      el("div.form", {}, field("Theme", theme), field("Desktop notifications", el("span", {}, notify, " for every new critical anomaly"))),
    ),
    el("div.button-row", {}, save, demo),
    status,
  );
}

export function unmount() {
  root = null;
}
