// The confirmation every action goes through: it says what will happen and asks why.

import {h} from "./dom.js";

/**
 * Ask to confirm ``title`` (``consequence`` says what it does); resolves to the reason the
 * operator typed, or null if they cancelled. The reason is required.
 */
export function confirmAction({title, consequence, confirmLabel}) {
  return new Promise((resolve) => {
    const reason = h("textarea", {id: "action-reason", name: "reason", rows: 3, required: true,
      "aria-describedby": "action-consequence"});
    const error = h("p", {class: "error", role: "alert"});
    const form = h("form", {method: "dialog"},
      h("h2", {}, title),
      h("p", {id: "action-consequence"}, consequence),
      h("div", {class: "field"},
        h("label", {for: "action-reason"}, "Reason (recorded in the audit trail)"), reason),
      error,
      h("div", {class: "buttons"},
        h("button", {type: "button", value: "cancel", class: "secondary",
          onclick: () => dialog.close("cancel")}, "Cancel"),
        h("button", {type: "submit", value: "confirm", class: "danger"}, confirmLabel)));
    const dialog = h("dialog", {class: "confirm", "aria-labelledby": "action-title"}, form);
    form.querySelector("h2").id = "action-title";
    form.addEventListener("submit", (event) => {
      if (!reason.value.trim()) {
        event.preventDefault();
        error.textContent = "Say why: the reason is required.";
        reason.focus();
      }
    });
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "confirm" && reason.value.trim();
      dialog.remove();
      resolve(confirmed ? reason.value.trim() : null);
    });
    // What the last action said no longer applies to this one.
    document.getElementById("toast").replaceChildren();
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}
