// The console's pages, chosen by the location's hash: #/, #/search?..., #/saga/ID,
// #/dead-letters. Each page's mount(root, route) returns the function that stops it.

import {setOperatorToken} from "./api.js";
import {showDeadLetters} from "./deadletters.js";
import {showOverview} from "./overview.js";
import {showSaga} from "./saga.js";
import {showSearch} from "./search.js";

const PAGES = [
  {name: "overview", pattern: /^\/?$/, mount: showOverview},
  {name: "search", pattern: /^\/search$/, mount: showSearch},
  {name: "saga", pattern: /^\/saga\/(?<id>[^/]+)$/, mount: showSaga},
  {name: "dead-letters", pattern: /^\/dead-letters$/, mount: showDeadLetters},
];

let stop = () => {};

function route() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const page = PAGES.find((p) => p.pattern.test(path)) ?? PAGES[0];
  const match = path.match(page.pattern);
  const id = match?.groups?.id ? decodeURIComponent(match.groups.id) : null;
  stop();
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === page.name;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.getElementById("toast").replaceChildren(); // it spoke of the page left
  const main = document.getElementById("main");
  main.replaceChildren();
  main.dataset.page = page.name;
  stop = page.mount(main, {id, params}) ?? (() => {});
}

// The admin API takes an operator's token: asked for once, kept for this browser tab.
function askForToken(event) {
  const form = document.getElementById("sign-in");
  const why = document.getElementById("sign-in-why");
  why.textContent = event?.detail ? String(event.detail) : "";
  if (!form.hidden) return;
  stop();
  stop = () => {};
  form.hidden = false;
  document.getElementById("main").replaceChildren();
  document.getElementById("token").focus();
}

document.getElementById("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  setOperatorToken(input.value.trim());
  input.value = "";
  event.target.hidden = true;
  route();
});

window.addEventListener("ordersaga:sign-in", askForToken);
window.addEventListener("hashchange", route);
route();
