// Dead letters: what each consumer could not read, its payload, and replaying it.

import {api} from "./api.js";
import {confirmAction} from "./dialog.js";
import {field, fill, h, sagaLink, toast} from "./dom.js";

const LIMIT = "100";

export function showDeadLetters(root, {params}) {
  const topic = h("input", {name: "topic", value: params.get("topic") ?? "", autocomplete: "off",
    placeholder: "every dead-letter topic"});
  const form = h("form", {class: "filters", role: "search", "aria-label": "Find dead letters"},
    field("Topic", topic, "a topic or its .DLQ"),
    h("div", {class: "buttons"}, h("button", {type: "submit"}, "Show")));
  const list = h("section", {class: "results", "aria-live": "polite"});
  const shown = h("section", {class: "panel wide letter", hidden: true, "aria-live": "polite"});
  root.append(h("h1", {}, "Dead letters"), form, list, shown);
  const load = async () => {
    try {
      const found = await api.deadLetters({topic: params.get("topic"), limit: LIMIT});
      drawList(list, found, (letter) => open(shown, letter, load));
    } catch (error) {
      fill(list, h("p", {class: "error", role: "alert"}, `Could not list — ${error.message}`));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const next = topic.value.trim() ? `#/dead-letters?topic=${encodeURIComponent(topic.value.trim())}`
      : "#/dead-letters";
    if (location.hash === next) load();
    else location.hash = next;
  });
  load();
}

const name = (letter) => `${letter.topic}/${letter.partition}/${letter.offset}`;

function drawList(node, letters, onOpen) {
  fill(node, h("p", {class: "count", dataset: {total: letters.length}},
    letters.length === 1 ? "1 dead letter" : `${letters.length} dead letters`),
  letters.length > 0 && h("div", {class: "table-wrap"}, h("table", {},
    h("thead", {}, h("tr", {}, ["Dead letter", "Came from", "Error", "Saga", ""].map((title) =>
      h("th", {scope: "col"}, title)))),
    h("tbody", {}, letters.map((letter) =>
      h("tr", {dataset: {letter: name(letter)}},
        h("td", {class: "mono"}, name(letter)),
        h("td", {class: "mono"}, letter.source_address),
        h("td", {class: "reason"}, letter.error ?? ""),
        h("td", {}, letter.saga_id ? sagaLink(letter.saga_id) : "—"),
        h("td", {}, h("button", {type: "button", class: "secondary",
          "aria-label": `Show ${name(letter)}`, onclick: () => onOpen(letter)}, "Show"))))))));
}

async function open(node, letter, reload) {
  let detail;
  try {
    detail = await api.deadLetter(letter);
  } catch (error) {
    toast(`Could not read ${name(letter)} — ${error.message}`, "error");
    return;
  }
  const headers = detail.headers ?? {};
  fill(node,
    h("h2", {}, "Dead letter ", h("span", {class: "mono"}, name(detail))),
    h("dl", {class: "facts"},
      h("dt", {}, "Came from"), h("dd", {class: "mono"}, detail.source_address),
      h("dt", {}, "Error"), h("dd", {}, detail.error ?? ""),
      h("dt", {}, "Consumer"), h("dd", {}, detail.consumer ?? ""),
      h("dt", {}, "Key"), h("dd", {class: "mono"}, detail.key || "—"),
      h("dt", {}, "Message id"), h("dd", {class: "mono"}, detail.message_id ?? "—"),
      h("dt", {}, "Saga"), h("dd", {}, detail.saga_id ? sagaLink(detail.saga_id) : "—")),
    h("h3", {}, "Payload"),
    h("pre", {class: "payload", tabindex: 0, dataset: {payload: ""}}, detail.value),
    h("h3", {}, "Headers"),
    h("dl", {class: "facts mono"}, Object.entries(headers).map(([key, value]) =>
      [h("dt", {}, key), h("dd", {}, value)])),
    h("div", {class: "buttons"}, h("button", {type: "button", class: "danger", onclick: async () => {
      const reason = await confirmAction({title: `Replay ${name(detail)}`,
        consequence: `Publishes it again to ${detail.source_topic ?? "its source topic"}, ` +
          "with its message id, so an effect already applied is not applied twice.",
        confirmLabel: "Replay"});
      if (reason === null) return;
      try {
        const answer = await api.replay(detail, reason);
        toast(`Replayed ${name(detail)}${answer?.to_topic ? ` to ${answer.to_topic}` : ""}.`, "ok");
      } catch (error) {
        toast(`Replay refused — ${error.message}`, "error");
      }
      await reload();
    }}, "Replay…")));
  node.hidden = false;
  node.scrollIntoView({block: "nearest"});
}
