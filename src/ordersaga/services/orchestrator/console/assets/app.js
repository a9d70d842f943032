// The console's pages, chosen by the location's hash: #/, #/search?..., #/saga/ID,
// #/dead-letters. Each page's mount(root, route) returns the function that stops it.

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

window.addEventListener("hashchange", route);
route();
