// The admin API, the console's only source of data.

const BASE = new URL("../admin/v1/", document.baseURI);

/** An answer other than 2xx: its status and the API's own words for it. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${describe(detail)}`);
    this.status = status;
    this.detail = detail;
  }
}

function describe(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    // FastAPI's 422: [{loc: ["query", "limit"], msg: "..."}]
    return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "request"}: ${d.msg}`)
      .join("; ");
  }
  return JSON.stringify(detail);
}

const TOKEN_KEY = "ordersaga-operator-token";

/** The operator's bearer token for this browser tab, or null. */
export function operatorToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setOperatorToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function request(method, path, {query = {}, body} = {}) {
  const url = new URL(path, BASE);
  for (const [name, value] of Object.entries(query)) {
    if (value !== "" && value !== null && value !== undefined) url.searchParams.set(name, value);
  }
  const init = {method, headers: {Accept: "application/json"}};
  const token = operatorToken();
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  if (response.status === 401 || response.status === 403) {
    // No token, an expired one, or one without the operator role: ask for another.
    window.dispatchEvent(new CustomEvent("ordersaga:sign-in", {detail: data?.detail ?? ""}));
  }
  if (!response.ok) throw new ApiError(response.status, data?.detail ?? data ?? response.statusText);
  return data;
}

const part = encodeURIComponent;
const letter = (l) => `dead-letters/${part(l.topic)}/${part(l.partition)}/${part(l.offset)}`;

export const api = {
  counts: () => request("GET", "sagas/counts"),
  search: (filters) => request("GET", "sagas", {query: filters}),
  saga: (sagaId) => request("GET", `sagas/${part(sagaId)}`),
  retry: (sagaId, reason) => request("POST", `sagas/${part(sagaId)}/retry`, {body: {reason}}),
  cancel: (sagaId, reason) => request("POST", `sagas/${part(sagaId)}/cancel`, {body: {reason}}),
  deadLetters: (filters) => request("GET", "dead-letters", {query: filters}),
  deadLetter: (address) => request("GET", letter(address)),
  replay: (address, reason) => request("POST", `${letter(address)}/replay`, {body: {reason}}),
};

/**
 * Call ``load`` now and every ``interval`` ms until the returned function is called;
 * a call never overlaps the previous one. ``onError`` hears each failure.
 */
export function poll(load, interval, onError) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    try {
      await load();
      live(`live · updated ${new Date().toISOString().slice(11, 19)} UTC`);
    } catch (error) {
      live("not updated: the admin API did not answer", true);
      onError?.(error);
    }
    if (!stopped) timer = setTimeout(run, interval);
  };
  run();
  return () => {
    stopped = true;
    clearTimeout(timer);
    live("");
  };
}

function live(text, failed = false) {
  const node = document.getElementById("live");
  node.textContent = text;
  node.classList.toggle("failed", failed);
}
