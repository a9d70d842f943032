// The overview: counts by state, sagas per second, the parked and the oldest unfinished.

import {api, poll} from "./api.js";
import {age, badge, fill, h, sagaLink, when} from "./dom.js";

const POLL_MS = 2000;
const PARKED_SHOWN = 20;

export function showOverview(root) {
  const counts = h("section", {class: "panel", "aria-labelledby": "counts-title"});
  const oldest = h("section", {class: "panel", "aria-labelledby": "oldest-title"});
  const parked = h("section", {class: "panel wide", "aria-labelledby": "parked-title"});
  const problem = h("p", {class: "error", role: "alert", hidden: true});
  root.append(h("h1", {}, "Overview"), problem, h("div", {class: "grid"}, counts, oldest, parked));
  return poll(async () => {
    const [summary, found] = await Promise.all([
      api.counts(),
      api.search({parked: true, sort: "updated_at", order: "asc", limit: PARKED_SHOWN}),
    ]);
    drawCounts(counts, summary);
    drawOldest(oldest, summary.oldest_unfinished);
    drawParked(parked, found);
    problem.hidden = true;
  }, POLL_MS, (error) => {
    problem.textContent = `The admin API did not answer — ${error.message}`;
    problem.hidden = false;
  });
}

function drawCounts(node, summary) {
  const perSecond = summary.finished_last_minute / 60;
  const tiles = Object.entries(summary.by_state).map(([state, n]) =>
    h("li", {class: `tile state-${state.toLowerCase()}`, dataset: {state}},
      h("a", {href: `#/search?state=${encodeURIComponent(state)}`},
        h("span", {class: "figure", dataset: {count: state}}, n), h("span", {}, state))));
  fill(node,
    h("h2", {id: "counts-title"}, "Sagas by state"),
    h("ul", {class: "tiles"}, tiles),
    h("dl", {class: "figures"},
      h("div", {}, h("dt", {}, "Unfinished"), h("dd", {dataset: {figure: "unfinished"}},
        summary.unfinished)),
      h("div", {}, h("dt", {}, "Parked"), h("dd", {dataset: {figure: "parked"}}, summary.parked)),
      h("div", {}, h("dt", {}, "Sagas per second (last minute)"),
        h("dd", {dataset: {figure: "per-second"}}, perSecond.toFixed(2))),
      h("div", {}, h("dt", {}, "Finished in the last minute"),
        h("dd", {dataset: {figure: "finished-last-minute"}}, summary.finished_last_minute))));
}

function drawOldest(node, saga) {
  fill(node, h("h2", {id: "oldest-title"}, "Oldest unfinished saga"),
    saga
      ? h("dl", {class: "facts", dataset: {oldest: saga.saga_id}},
        h("dt", {}, "Saga"), h("dd", {}, sagaLink(saga.saga_id)),
        h("dt", {}, "State"), h("dd", {}, badge(saga.state)),
        h("dt", {}, "Step"), h("dd", {}, saga.step_name ?? saga.step),
        h("dt", {}, "Begun"), h("dd", {title: when(saga.created_at)}, `${age(saga.created_at)} ago`),
        saga.reason && [h("dt", {}, "Reason"), h("dd", {}, saga.reason)])
      : h("p", {class: "quiet"}, "Every saga has finished."));
}

function drawParked(node, found) {
  const rows = found.items.map((saga) =>
    h("tr", {dataset: {saga: saga.saga_id}},
      h("td", {}, sagaLink(saga.saga_id)),
      h("td", {}, saga.step_name ?? saga.step),
      h("td", {title: when(saga.updated_at)}, `${age(saga.updated_at)} ago`),
      h("td", {class: "reason"}, saga.reason ?? "")));
  fill(node, h("h2", {id: "parked-title"}, `Parked sagas (${found.total})`),
    rows.length
      ? h("div", {class: "table-wrap"}, h("table", {},
        h("thead", {}, h("tr", {}, h("th", {scope: "col"}, "Saga"), h("th", {scope: "col"}, "Step"),
          h("th", {scope: "col"}, "Parked for"), h("th", {scope: "col"}, "Why"))),
        h("tbody", {}, rows)))
      : h("p", {class: "quiet"}, "No saga is parked."),
    found.total > rows.length &&
      h("p", {}, h("a", {href: "#/search?parked=true"}, `All ${found.total} parked sagas`)));
}
