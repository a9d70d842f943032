// Search: every filter the admin API has, the answer a page at a time.

import {api} from "./api.js";
import {age, badge, field, fill, h, sagaLink, when} from "./dom.js";

const FILTERS = ["order_id", "user_id", "state", "step", "older_than", "newer_than", "parked",
  "reason", "sort", "order", "limit"];
const PAGE_SIZE = "25";

export function showSearch(root, {params}) {
  const input = (name, attrs = {}) =>
    h("input", {name, value: params.get(name) ?? "", autocomplete: "off", ...attrs});
  const select = (name, options) => {
    const node = h("select", {name}, options.map(([value, label]) =>
      h("option", {value, selected: (params.get(name) ?? "") === value}, label)));
    return node;
  };
  const states = select("state", [["", "any"]]);
  const form = h("form", {class: "filters", role: "search", "aria-label": "Find sagas"},
    field("Order id", input("order_id", {spellcheck: "false"})),
    field("User id", input("user_id", {inputmode: "numeric"})),
    field("State", states),
    field("Step", input("step"), "name or number"),
    field("Older than", input("older_than"), "e.g. 30s, 10m, 2h"),
    field("Newer than", input("newer_than"), "e.g. 30s, 10m, 2h"),
    field("Parked", select("parked", [["", "any"], ["true", "parked"], ["false", "not parked"]])),
    field("Reason contains", input("reason")),
    field("Sort by", select("sort", [["created_at", "begun"], ["updated_at", "last change"],
      ["state", "state"], ["step", "step"], ["deadline", "deadline"]])),
    field("Order", select("order", [["desc", "descending"], ["asc", "ascending"]])),
    h("div", {class: "buttons"},
      h("button", {type: "submit"}, "Search"),
      h("a", {href: "#/search", class: "button secondary"}, "Clear")));
  const results = h("section", {class: "results", "aria-live": "polite", "aria-busy": "true"});
  root.append(h("h1", {}, "Search sagas"), form, results);

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value.trim()) query.set(name, value.trim());
    const next = `#/search?${query}`;
    if (location.hash === next) load();
    else location.hash = next;
  });

  // The states to choose from are the ones the API counts.
  api.counts().then((summary) => {
    for (const state of Object.keys(summary.by_state)) {
      states.append(h("option", {value: state, selected: params.get("state") === state}, state));
    }
  }).catch(() => {});

  const load = () => search(results, params);
  load();
}

async function search(results, params) {
  const filters = {limit: PAGE_SIZE};
  for (const name of FILTERS) if (params.get(name)) filters[name] = params.get(name);
  if (params.get("cursor")) filters.cursor = params.get("cursor");
  results.setAttribute("aria-busy", "true");
  results.dataset.query = params.toString();
  try {
    draw(results, await api.search(filters), params);
  } catch (error) {
    fill(results, h("p", {class: "error", role: "alert"}, `Search refused — ${error.message}`));
  }
  results.setAttribute("aria-busy", "false");
}

function draw(results, found, params) {
  const now = Date.now();
  const rows = found.items.map((saga) =>
    h("tr", {dataset: {saga: saga.saga_id, state: saga.state}},
      h("td", {}, sagaLink(saga.saga_id)),
      h("td", {}, saga.user_id ?? saga.data?.userID ?? ""),
      h("td", {}, badge(saga.state)),
      h("td", {}, saga.step_name ?? saga.step),
      h("td", {title: when(saga.created_at)}, age(saga.created_at, now)),
      h("td", {class: "reason"}, saga.reason ?? "")));
  const page = (cursor, label, rel) => {
    const query = new URLSearchParams(params);
    if (cursor) query.set("cursor", cursor);
    else query.delete("cursor");
    return h("a", {href: `#/search?${query}`, class: "button secondary", rel}, label);
  };
  fill(results,
    h("p", {class: "count", dataset: {total: found.total}},
      found.total === 1 ? "1 saga matches" : `${found.total} sagas match`),
    rows.length > 0 && h("div", {class: "table-wrap"}, h("table", {},
      h("caption", {class: "visually-hidden"}, "Sagas found"),
      h("thead", {}, h("tr", {},
        ["Saga (order id)", "User", "State", "Step", "Age", "Reason"].map((title) =>
          h("th", {scope: "col"}, title)))),
      h("tbody", {}, rows))),
    h("nav", {class: "pages", "aria-label": "Result pages"},
      params.get("cursor") && page(null, "First page", "first"),
      found.next_cursor && page(found.next_cursor, "Next page", "next")));
}
