// Small helpers to build the page's elements: no framework, no build step.

/** An element: h("a", {href: "#/"}, "text", child...). null and false children are skipped. */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** Replace everything in ``node`` with ``children``. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A time as the API gives it (ISO 8601), shown in UTC to the millisecond. */
export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toISOString().replace("T", " ").replace(/\.(\d{3})Z$/, ".$1 UTC");
}

/** The clock part of a time: 22:44:46.123. */
export function clock(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().slice(11, 23);
}

/** How long ago ``iso`` was: "4 s", "3 min", "2 h 5 min", "3 d". */
export function age(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (seconds < 90) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 90) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d`;
}

/** A state as a badge whose colour says what it means. */
export function badge(state) {
  return h("span", {class: `badge state-${String(state).toLowerCase()}`}, state ?? "—");
}

/** A link to one saga's page. */
export function sagaLink(sagaId) {
  return h("a", {href: `#/saga/${encodeURIComponent(sagaId)}`, class: "mono"}, sagaId);
}

/** A labelled form field: the label names the input, for screen readers too. */
export function field(label, input, hint = null) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  input.id = id;
  return h("div", {class: "field"}, h("label", {for: id}, label), input,
    hint && h("small", {}, hint));
}

/** Say something briefly in the page's status line (read out by screen readers). */
export function toast(message, kind = "info") {
  const node = document.getElementById("toast");
  fill(node, h("p", {class: `toast ${kind}`}, message));
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => node.replaceChildren(), 8000);
}
