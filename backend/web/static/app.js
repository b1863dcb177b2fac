// The site's shell: the hash router, the wallet corner of the header, and the sign-in panel
// pages show when they need a signed-in wallet.
import { session } from "/web/api.js";
import { h, mount, leavePage, announce, showProblem, shortAddress } from "/web/ui.js";
import { signOut } from "/web/wallet.js";
import { signInPanel } from "/web/signin.js";
import * as fan from "/web/fan.js";
import * as resale from "/web/resale.js";
import * as organizer from "/web/organizer.js";
import * as door from "/web/door.js";

const routes = [
  [/^\/?$/, fan.eventsPage, "Events"],
  [/^\/events\/(\d+)$/, fan.eventPage, "Event"],
  [/^\/events\/(\d+)\/wait$/, fan.waitingRoomPage, "Waiting room"],
  [/^\/events\/(\d+)\/market$/, resale.eventMarketPage, "Resale market"],
  [/^\/market$/, resale.marketPage, "Resale"],
  [/^\/tickets$/, fan.ticketsPage, "My tickets"],
  [/^\/tickets\/(\d+)$/, resale.ticketPage, "Ticket"],
  [/^\/payouts$/, resale.payoutsPage, "My payouts"],
  [/^\/account$/, fan.accountPage, "Account"],
  [/^\/organizer$/, organizer.organizerPage, "Organizer"],
  [/^\/organizer\/new$/, organizer.createEventPage, "Create an event"],
  [/^\/organizer\/events\/(\d+)$/, organizer.salesPage, "Live sales"],
  [/^\/door$/, door.scannerPage, "Door scanner"],
  [/^\/signin$/, signInPage, "Sign in"],
];

export function currentPath() {
  return (location.hash.replace(/^#/, "") || "/").split("?")[0];
}

async function render() {
  leavePage();
  const main = document.getElementById("main");
  const path = currentPath();
  for (const [pattern, page, title] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    document.title = `${title} · fairtix`;
    markNav(path);
    mount(main, h("p", { class: "loading" }, "Loading…"));
    try {
      await page(main, ...match.slice(1));
    } catch (error) {
      mount(main, h("h1", {}, "Something went wrong"), h("div", { id: "page-problem" }));
      showProblem(main.querySelector("#page-problem"), error);
    }
    // Move focus to the new page so keyboard and screen-reader users start at its top.
    const heading = main.querySelector("h1");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus({ preventScroll: true }); }
    return;
  }
  document.title = "Not found · fairtix";
  mount(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "See the events")));
}

function markNav(path) {
  for (const link of document.querySelectorAll("#nav a")) {
    const target = link.getAttribute("href").slice(1);
    const market = path === "/market" || path.endsWith("/market");
    const current = target === "/market" ? market
      : target === "/" ? !market && (path === "/" || path.startsWith("/events")) : path.startsWith(target);
    if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
}

function renderWalletCorner() {
  const corner = document.getElementById("wallet");
  const current = session();
  const roles = current?.roles || [];
  document.getElementById("nav-organizer").hidden = !(roles.includes("organizer") || roles.includes("admin"));
  if (current) {
    mount(corner,
      h("span", { class: "who", title: current.address }, shortAddress(current.address)),
      h("button", { class: "secondary", type: "button", onclick: async () => { await signOut(); announce("Signed out"); location.hash = "#/"; } }, "Sign out"));
  } else {
    mount(corner, h("a", { class: "button secondary", href: `#/signin?next=${encodeURIComponent(location.hash || "#/")}` }, "Sign in"));
  }
}

async function signInPage(main) {
  const next = new URLSearchParams(location.hash.split("?")[1] || "").get("next") || "#/";
  if (session()) { location.hash = next; return; }
  mount(main, h("h1", {}, "Sign in"), signInPanel(() => { location.hash = next === "#/signin" ? "#/" : next; }));
}

window.addEventListener("hashchange", render);
window.addEventListener("fairtix:session", renderWalletCorner);
window.addEventListener("storage", (e) => { if (e.key === "fairtix.session") renderWalletCorner(); });
renderWalletCorner();
render();
