// The keyboard: shortcuts as the server lists them (feedback/review/shortcuts.py), bound to actions.
// Single-key shortcuts (one character, no modifier) can be turned off (WCAG 2.1.4); the choice is
// kept in localStorage. Keys typed into a text field never trigger a single-key shortcut.
export const SINGLE_KEYS_STORAGE = "review:single-key-shortcuts";

// "Ctrl+Alt+F" → {ctrl: true, alt: true, shift: false, key: "F"}; "+" → {key: "+"}.
export function parseKey(spec) {
  if (spec.length === 1) return {ctrl: false, alt: false, shift: false, key: spec};
  const parts = spec.split("+");
  let key = parts.pop();
  if (key === "" && parts[parts.length - 1] === "") { parts.pop(); key = "+"; }
  const mods = new Set(parts);
  return {ctrl: mods.has("Ctrl"), alt: mods.has("Alt"), shift: mods.has("Shift"), key};
}

const altGraph = (event) => Boolean(event.getModifierState && event.getModifierState("AltGraph"));

// The digit an event stands for under "1-9" (Alt+1-9), else null.
function digitOf(event) {
  const match = /^Digit([1-9])$/.exec(event.code || "");
  return match ? match[1] : null;
}

// Whether the keydown event is this key; for "…+1-9" the digit pressed, as a string.
export function matches(event, spec) {
  const want = typeof spec === "string" ? parseKey(spec) : spec;
  const ctrl = event.ctrlKey || event.metaKey;
  if (!want.ctrl && !want.alt) {
    if (ctrl || event.altKey) return false;
    if (want.key.length === 1) return event.key.toLowerCase() === want.key.toLowerCase();
    return event.key === want.key && event.shiftKey === want.shift;
  }
  if (ctrl !== want.ctrl || event.altKey !== want.alt || event.shiftKey !== want.shift) return false;
  if (want.alt && want.ctrl && altGraph(event)) return false; // AltGr typing a character
  if (want.key === "1-9") return digitOf(event) || false;
  if (/^[A-Z]$/.test(want.key)) return event.code === "Key" + want.key; // Alt may change event.key
  return event.key === want.key;
}

export const isSingleKey = (spec) => spec.length === 1;

const typingIn = (target) => Boolean(target) && (target.tagName === "TEXTAREA" || target.isContentEditable
  || (target.tagName === "INPUT" && !["radio", "checkbox", "button", "submit"].includes(target.type)));

export class Keyboard {
  // shortcuts: [{action, keys, single}]; actions: {name: (detail) => void}.
  constructor({shortcuts, actions, storage = globalThis.localStorage}) {
    this.shortcuts = shortcuts.map((s) => ({...s, parsed: s.keys.map((k) => [k, parseKey(k)])}));
    this.actions = actions;
    this.storage = storage;
  }

  get singleKeys() {
    try { return this.storage.getItem(SINGLE_KEYS_STORAGE) !== "off"; } catch (error) { return true; }
  }

  set singleKeys(on) {
    try { this.storage.setItem(SINGLE_KEYS_STORAGE, on ? "on" : "off"); } catch (error) { /* not kept */ }
  }

  // The action a keydown event names, with its detail (the digit of a score), or null.
  find(event) {
    const typing = typingIn(event.target);
    for (const shortcut of this.shortcuts) {
      for (const [spec, parsed] of shortcut.parsed) {
        if (isSingleKey(spec) && (typing || !this.singleKeys)) continue;
        const hit = matches(event, parsed);
        if (hit) return {action: shortcut.action, detail: typeof hit === "string" ? hit : null, spec};
      }
    }
    return null;
  }

  // Runs the action of a keydown event; true when one ran (the event's default is then prevented).
  handle(event) {
    const found = this.find(event);
    if (!found || !this.actions[found.action]) return false;
    event.preventDefault();
    this.actions[found.action](found.detail, event);
    return true;
  }
}
