// DOM helpers. Every text from the API goes in as text (textContent), never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(container, ...children) {
  container.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// One polite live region for the whole site: screen readers hear progress and problems.
export function announce(text) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = text;
}

export function alertBox(message, kind = "error") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
}

// Shows an error's sentence in `slot` (an element), or clears it.
export function showProblem(slot, error) {
  if (!slot) return;
  if (!error) { slot.replaceChildren(); return; }
  const sentence = error.sentence || error.shortMessage || error.message || String(error);
  slot.replaceChildren(alertBox(walletSentence(error) || sentence));
}

// Wallet errors (EIP-1193 codes) as sentences.
export function walletSentence(error) {
  const code = error?.code ?? error?.info?.error?.code ?? error?.error?.code;
  if (code === 4001 || code === "ACTION_REJECTED") return "You declined the request in your wallet.";
  if (code === 4100) return "Your wallet hasn't allowed this site yet: connect it first.";
  if (code === 4902) return "Your wallet doesn't know this network yet.";
  if (code === "INSUFFICIENT_FUNDS") return "Your wallet doesn't have enough ether for this (price plus gas).";
  return null;
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), input, hintEl);
}

export function busy(button, text) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (text) button.textContent = text;
  return () => { button.disabled = false; button.removeAttribute("aria-busy"); button.textContent = original; };
}

export function formatMoney(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency.toUpperCase() }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;
  }
}

export function formatDate(iso) {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function formatDuration(seconds) {
  seconds = Math.max(0, Math.round(seconds));
  const d = Math.floor(seconds / 86400), hr = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (d) return `${d} d ${hr} h ${m} min`;
  if (hr) return `${hr} h ${m} min`;
  if (m) return `${m} min ${s} s`;
  return `${s} s`;
}

export function shortAddress(a) {
  return a ? `${a.slice(0, 6)}…${a.slice(-4)}` : "";
}

export function progress(label, value, max) {
  const attrs = { "aria-label": label };
  if (value !== undefined) { attrs.value = value; attrs.max = max; }
  return h("progress", attrs);
}

// Repeats fn every `ms` while the page that started it is shown; returns a stop function.
// The router calls every stop function when it leaves a page.
const cleanups = new Set();
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { console.warn(e); }
    if (!stopped) timer = setTimeout(tick, typeof ms === "function" ? ms() : ms);
  };
  tick();
  const stop = () => { stopped = true; clearTimeout(timer); cleanups.delete(stop); };
  cleanups.add(stop);
  return stop;
}

export function onLeave(fn) { cleanups.add(fn); }

export function leavePage() {
  for (const fn of [...cleanups]) { try { fn(); } catch { /* leaving anyway */ } }
  cleanups.clear();
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
