// One saga: what it is, its timeline as lanes, what it will still do, what undoing it
// would take, and the actions an operator may take on it. Refreshed every 2 seconds.

import {api, poll} from "./api.js";
import {confirmAction} from "./dialog.js";
import {age, badge, fill, h, toast, when} from "./dom.js";
import {drawTimeline} from "./timeline.js";

const POLL_MS = 2000;

export function showSaga(root, {id}) {
  const head = h("section", {class: "panel wide", "aria-labelledby": "saga-title"});
  const plan = h("section", {class: "panel wide plan", "aria-labelledby": "plan-title"});
  const timeline = h("section", {class: "panel wide", "aria-labelledby": "timeline-title"});
  root.append(h("p", {class: "crumbs"}, h("a", {href: "#/search"}, "← Search")),
    head, plan, timeline);
  let shown = null;
  const load = async () => {
    let detail;
    try {
      detail = await api.saga(id);
    } catch (error) {
      if (error.status !== 404) throw error;
      fill(head, h("h1", {id: "saga-title"}, "No such saga"),
        h("p", {class: "error", role: "alert"}, error.detail));
      return;
    }
    const text = JSON.stringify(detail);
    if (text === shown) return; // unchanged: keep the reader's place and focus
    shown = text;
    drawHead(head, detail, load);
    drawPlan(plan, detail);
    fill(timeline, h("h2", {id: "timeline-title"}, `Timeline (${detail.timeline.length} events)`),
      drawTimeline(detail.timeline));
  };
  return poll(load, POLL_MS, (error) => toast(`Could not refresh the saga — ${error.message}`, "error"));
}

function drawHead(node, detail, reload) {
  const saga = detail.saga;
  const data = saga.data ?? {};
  fill(node,
    h("h1", {id: "saga-title"}, "Saga ", h("span", {class: "mono", dataset: {sagaId: saga.saga_id}},
      saga.saga_id)),
    h("p", {class: "state-line"}, badge(saga.state), " ",
      h("span", {}, saga.definition ?? ""), " · step ", h("span", {dataset: {step: ""}},
        saga.step_name ?? saga.step)),
    saga.reason && h("p", {class: "reason", dataset: {reason: ""}}, saga.reason),
    h("dl", {class: "facts"},
      fact("Begun", when(saga.created_at)),
      fact("Last change", `${when(saga.updated_at)} (${age(saga.updated_at)} ago)`),
      fact("Deadline", when(saga.deadline)),
      fact("Attempts", saga.attempts ?? 0),
      Object.entries(data).map(([name, value]) => fact(name, value))),
    actions(saga, detail.remaining_steps ?? [], reload));
}

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value === null || value === undefined ? "—" : value)];
}

function actions(saga, remaining, reload) {
  const buttons = [];
  if (saga.state === "PARKED") {
    buttons.push(h("button", {type: "button", class: "danger", onclick: () => act(
      {title: "Retry this parked saga",
        consequence: "Sends the step it waits on again, its attempts counted afresh.",
        confirmLabel: "Retry"},
      (reason) => api.retry(saga.saga_id, reason), reload)}, "Retry…"));
  }
  // Before the pivot the step under way is compensatable; from the pivot on, forward only.
  if (saga.state === "RUNNING" && remaining[0]?.kind === "compensatable") {
    buttons.push(h("button", {type: "button", class: "danger", onclick: () => act(
      {title: "Cancel this saga",
        consequence: `Compensates ${remaining[0]?.name} and the steps before it now, ` +
          "and cancels the order.",
        confirmLabel: "Cancel the saga"},
      (reason) => api.cancel(saga.saga_id, reason), reload)}, "Cancel saga…"));
  }
  return buttons.length ? h("div", {class: "buttons actions"}, buttons) : null;
}

async function act(question, perform, reload) {
  const reason = await confirmAction(question);
  if (reason === null) return;
  try {
    const answer = await perform(reason);
    const state = answer?.saga?.state ?? answer?.state;
    toast(state ? `Done: the saga is now ${state}.` : "Done.", "ok");
  } catch (error) {
    toast(`Refused — ${error.message}`, "error");
  }
  await reload().catch(() => {});
}

function drawPlan(node, detail) {
  const remaining = detail.remaining_steps ?? [];
  const compensations = detail.compensation_plan ?? [];
  fill(node,
    h("h2", {id: "plan-title"}, "What it will still do"),
    h("div", {class: "columns"},
      h("div", {},
        h("h3", {}, "Remaining steps"),
        remaining.length
          ? h("ol", {class: "steps", dataset: {list: "remaining"}}, remaining.map((step) =>
            h("li", {dataset: {step: step.step, name: step.name}},
              h("strong", {}, step.name), ` · ${step.service} · ${step.kind}`,
              step.deadline && h("span", {class: "deadline"}, ` · deadline ${when(step.deadline)}`))))
          : h("p", {class: "quiet"}, "None: the saga has no step left to run.")),
      h("div", {},
        h("h3", {}, "If it failed now"),
        compensations.length
          ? h("ol", {class: "steps", dataset: {list: "compensations"}}, compensations.map((step) =>
            h("li", {dataset: {step: step.step, name: step.name}},
              h("span", {class: "mono"}, step.command_topic), ` → ${step.service} (undoes ${step.name})`)))
          : h("p", {class: "quiet"}, "Nothing to compensate."))));
}
