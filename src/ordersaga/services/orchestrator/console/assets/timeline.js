// A saga's timeline drawn as lanes, one per service: a message is an arrow from the lane
// that sent it to the lane that received it; everything else is a mark in its own lane.

import {clock, h, when} from "./dom.js";

/** The lanes, left to right; a service the API names beyond these gets a lane of its own. */
const LANES = ["order", "orchestrator", "stock", "payment"];
const HUB = "orchestrator";

const KINDS = {
  message_in: "message in",
  message_out: "message out",
  transition: "state",
  deadline_set: "deadline set",
  deadline_fired: "deadline passed",
  late_reply_ignored: "late reply ignored",
  compensation_attempt: "compensation",
  operator_action: "operator",
};

export function drawTimeline(events) {
  const lanes = [...LANES];
  for (const event of events) {
    if (event.service && !lanes.includes(event.service)) lanes.push(event.service);
  }
  const style = `--lanes: ${lanes.length}`;
  return h("div", {class: "timeline", style},
    h("div", {class: "lanes-head", "aria-hidden": "true"},
      lanes.map((lane) => h("span", {class: `lane-name lane-${lane}`}, lane))),
    h("ol", {class: "events", "aria-label": "Timeline, oldest first"},
      events.map((event, index) => drawEvent(event, index, lanes))));
}

function drawEvent(event, index, lanes) {
  const lane = (name) => Math.max(0, lanes.indexOf(name ?? HUB));
  let from = lane(event.service);
  let to = from;
  if (event.kind === "message_in" || event.kind === "late_reply_ignored") to = lane(HUB);
  if (event.kind === "message_out" || event.kind === "compensation_attempt") {
    from = lane(HUB);
    to = lane(event.service);
  }
  const first = Math.min(from, to);
  const span = Math.abs(to - from) + 1;
  const mark = from === to
    ? h("span", {class: "dot", style: `grid-column: ${first + 1}`})
    : h("span", {class: `arrow ${to > from ? "right" : "left"}`,
      style: `grid-column: ${first + 1} / span ${span}; --span: ${span}`});
  return h("li", {
    class: `event kind-${event.kind}`,
    dataset: {
      index, kind: event.kind, service: event.service ?? "", topic: event.topic ?? "",
      messageId: event.message_id ?? "", fromState: event.from_state ?? "",
      toState: event.to_state ?? "", step: event.step ?? "",
      partition: event.partition ?? "", offset: event.offset ?? "",
    },
  },
  h("div", {class: "track", "aria-hidden": "true"}, mark),
  h("div", {class: "what"},
    h("time", {datetime: event.at, title: when(event.at)}, clock(event.at)),
    h("span", {class: "kind"}, KINDS[event.kind] ?? event.kind),
    h("span", {class: "visually-hidden"},
      from === to ? `at ${lanes[from]}` : `from ${lanes[from]} to ${lanes[to]}`),
    describe(event)));
}

function describe(event) {
  const parts = [];
  if (event.topic) {
    const where = event.partition !== null && event.partition !== undefined
      ? ` [${event.partition}@${event.offset ?? "?"}]` : "";
    const title = where ? `partition ${event.partition}, offset ${event.offset ?? "?"}` : null;
    parts.push(h("span", {class: "topic mono", title}, `${event.topic}${where}`));
  }
  if (event.from_state || event.to_state) {
    parts.push(h("span", {class: "states"},
      `${event.from_state ?? "—"} → ${event.to_state ?? "—"}`));
  }
  if (event.step !== null && event.step !== undefined) parts.push(h("span", {}, `step ${event.step}`));
  if (event.detail) parts.push(h("span", {class: "detail"}, event.detail));
  if (event.actor) parts.push(h("span", {class: "actor"}, `by ${event.actor}`));
  if (event.reason) parts.push(h("span", {class: "reason"}, `“${event.reason}”`));
  if (event.message_id) {
    parts.push(h("span", {class: "ids mono"}, `id ${event.message_id}`,
      event.causation_id ? ` ← ${event.causation_id}` : ""));
  }
  return parts;
}
