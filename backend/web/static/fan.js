// Fans' pages: the events, an event, the waiting room with checkout, my tickets, my account.
import { get, post, put, del, session, saveSession, ApiError } from "/web/api.js";
import {
  h, mount, field, busy, showProblem, announce, every, onLeave, formatMoney, formatDate,
  formatDuration, progress, alertBox, sleep,
} from "/web/ui.js";
import { requireSignIn } from "/web/signin.js";
import { cardForm, payWithWallet, followOrder, ethAmount } from "/web/pay.js";

function countdown(target, label) {
  const out = h("p", { class: "countdown", role: "timer", "aria-live": "off" });
  const tick = () => {
    const left = (new Date(target) - new Date()) / 1000;
    out.textContent = left > 0 ? `${label} in ${formatDuration(left)}` : `${label}: now`;
  };
  every(1000, tick);
  return out;
}

export async function eventsPage(main) {
  const events = await get("/events", { auth: false });
  const live = events.filter((e) => !e.cancelled && new Date(e.ends_at) > new Date());
  mount(main,
    h("h1", {}, "Events"),
    live.length ? h("ul", { class: "cards" }, live.map((e) => h("li", { class: "card" },
      h("h2", {}, h("a", { href: `#/events/${e.id}` }, e.name)),
      h("p", { class: "meta" }, `${formatDate(e.starts_at)} · ${e.venue || "Venue to be announced"}`),
      new Date(e.sale_opens_at) > new Date()
        ? h("p", {}, `On sale ${formatDate(e.sale_opens_at)}`)
        : h("p", {}, "On sale now"),
      h("p", { class: "meta" }, `From ${formatMoney(Math.min(...e.tiers.map((t) => t.price_cents)), e.tiers[0].currency)}`))))
      : h("p", {}, "No events on sale right now."));
}

export async function eventPage(main, id) {
  const [event, availability, policy] = await Promise.all([
    get(`/events/${id}`, { auth: false }),
    get(`/events/${id}/availability`, { auth: false }),
    get(`/events/${id}/resale`, { auth: false }).catch(() => null),
  ]);
  const tiers = h("tbody");
  const wei = Object.fromEntries(event.tiers.map((t) => [t.id, t.price_wei]));
  const fillTiers = (a) => mount(tiers, a.tiers.map((t) => h("tr", {},
    h("td", {}, t.name),
    h("td", {}, formatMoney(t.price_cents, t.currency), wei[t.tier_id] ? h("span", { class: "meta" }, ` or ${ethAmount(wei[t.tier_id])}`) : null),
    h("td", {}, t.sold_out ? "Sold out" : `${t.remaining} of ${t.supply} left`))));
  fillTiers(availability);
  // Availability changes under a fan's eyes during an on-sale.
  every(5000, async () => fillTiers(await get(`/events/${id}/availability`, { auth: false })));
  const saleOpen = new Date(event.sale_opens_at) <= new Date();
  mount(main,
    h("h1", {}, event.name),
    event.cancelled ? alertBox(`This event is cancelled: ${event.cancellation?.reason || ""}`) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "When"), h("dd", {}, formatDate(event.starts_at)),
      h("dt", {}, "Where"), h("dd", {}, event.venue || "To be announced"),
      h("dt", {}, "Tickets per order"), h("dd", {}, String(event.max_tickets_per_order))),
    event.description ? h("p", {}, event.description) : null,
    saleOpen ? h("p", { class: "countdown" }, availability.sold_out ? "Sold out" : "On sale now")
      : countdown(event.sale_opens_at, "Sale opens"),
    h("h2", {}, "Tickets"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tier"), h("th", { scope: "col" }, "Price"), h("th", { scope: "col" }, "Availability"))),
      tiers)),
    event.cancelled ? null : h("p", { class: "row" },
      h("a", { class: "button", href: `#/events/${id}/wait` }, saleOpen ? "Get tickets" : "Join the waiting room"),
      policy?.enabled ? h("a", { class: "button secondary", href: `#/events/${id}/market` }, "Resale market") : null),
    policy ? h("p", { class: "hint" },
      policy.enabled
        ? `Resale: at most ${policy.resale_cap_bps / 100}% of face value; the organizer takes ${policy.royalty_bps / 100}%.`
        : "Resale is off for this event.") : null);
}

// Where this wallet's place in an event's queue is kept, so a refresh or a second tab keeps it.
function placeKey(eventId) { return `fairtix.queue.${eventId}.${session()?.address?.toLowerCase()}`; }
function orderKey(eventId) { return `fairtix.order.${eventId}.${session()?.address?.toLowerCase()}`; }

function remember(eventId, status) {
  const stored = JSON.parse(localStorage.getItem(placeKey(eventId)) || "{}");
  const first = stored.first_position ?? status.position;
  localStorage.setItem(placeKey(eventId), JSON.stringify({ token: status.token, first_position: first }));
  return first;
}

async function takePlace(eventId) {
  const stored = JSON.parse(localStorage.getItem(placeKey(eventId)) || "null");
  if (stored?.token) {
    try {
      return await get(`/events/${eventId}/queue/me`, { headers: { "X-Queue-Token": stored.token } });
    } catch (error) {
      if (!(error instanceof ApiError) || ![401, 403, 404].includes(error.status)) throw error;
      localStorage.removeItem(placeKey(eventId));
    }
  }
  return post(`/events/${eventId}/queue`);
}

export async function waitingRoomPage(main, id) {
  if (!requireSignIn(main, "Waiting room")) return;
  const event = await get(`/events/${id}`, { auth: false });
  const statusBox = h("section", { class: "card", "aria-live": "polite", "aria-labelledby": "place-title" });
  const checkout = h("div");
  const problem = h("div");
  mount(main, h("h1", {}, `${event.name}: waiting room`), problem, statusBox, checkout);

  let status = await takePlace(id);
  let shownAdmitted = false;
  const show = (s) => {
    status = s;
    const first = remember(id, s);
    const parts = [h("h2", { id: "place-title" }, "Your place")];
    if (s.state === "waiting" || s.state === "away") {
      if (s.presale || s.position === null) {
        parts.push(h("p", {}, "You're in. When the sale opens, everyone who joined before it is put in a random order: arriving early gives no advantage."),
          countdown(s.sale_opens_at, "Sale opens"));
      } else {
        parts.push(h("p", { class: "big" }, s.position === 0 ? "You're next" : `${s.position} ${s.position === 1 ? "person" : "people"} ahead of you`));
        if (first) parts.push(progress("Your progress in the queue", Math.max(0, first - s.position), first));
        parts.push(h("p", {}, s.eta_seconds !== null ? `About ${formatDuration(s.eta_seconds)} to go.` : "Working out how long this will take…"));
      }
      if (s.paused) parts.push(h("p", { class: "notice warn" }, "The organizer has paused admissions for a moment. You keep your place."));
      parts.push(h("p", { class: "hint" }, "Keep this page open. You can refresh or use another tab: your place is kept."));
    } else if (s.state === "admitted") {
      parts.push(h("p", { class: "notice ok", role: "status" }, "It's your turn!"),
        s.admission_expires_at ? countdown(s.admission_expires_at, "Your turn ends") : null);
    } else if (s.state === "done") {
      parts.push(h("p", {}, "You've completed your purchase for this event."), h("a", { href: "#/tickets" }, "See my tickets"));
    } else {
      parts.push(h("p", {}, "Your turn ran out before you finished."),
        h("button", { type: "button", onclick: async () => { localStorage.removeItem(placeKey(id)); location.reload(); } }, "Join the queue again"));
    }
    mount(statusBox, parts);
    if (s.state === "admitted" && !shownAdmitted) {
      shownAdmitted = true;
      announce("It's your turn: choose your tickets");
      checkoutPanel(checkout, event, () => mount(statusBox, h("h2", { id: "place-title" }, "Your place"),
        h("p", {}, "Done: your turn is over and your tickets are in My tickets.")));
    }
  };
  show(status);
  if (status.state === "admitted" || status.state === "done" || status.state === "expired") return;

  // Live updates over server-sent events; polling (at the pace the API asks) if the stream fails.
  let source = null;
  let polling = null;
  const poll = () => {
    if (polling) return;
    polling = every(() => (status.poll_after_seconds || 3) * 1000, async () => {
      try {
        show(await get(`/events/${id}/queue/me`, { headers: { "X-Queue-Token": status.token } }));
        showProblem(problem, null);
      } catch (error) {
        // An expired queue token: the signed-in wallet asks again and keeps the same place.
        if (error instanceof ApiError && [401, 403].includes(error.status) && session()) {
          localStorage.removeItem(placeKey(id));
          try { show(await post(`/events/${id}/queue`)); showProblem(problem, null); return; } catch (again) { error = again; }
        }
        showProblem(problem, error);
      }
      if (status.state !== "waiting" && status.state !== "away") polling();
    });
  };
  try {
    source = new EventSource(`/events/${id}/queue/stream?queue_token=${encodeURIComponent(status.token)}`);
    source.addEventListener("status", (e) => {
      show(JSON.parse(e.data));
      if (status.state !== "waiting" && status.state !== "away") source.close();
    });
    source.addEventListener("error", () => {
      // The stream ends on its own after a while; EventSource reconnects with the first token,
      // so fall back on polling with the latest one instead.
      source.close();
      if (status.state === "waiting" || status.state === "away") poll();
    });
    onLeave(() => source.close());
  } catch { poll(); }
}

function checkoutPanel(container, event, onDone) {
  const tierSelect = h("select", { name: "tier" }, event.tiers.map((t) =>
    h("option", { value: t.id }, `${t.name} · ${formatMoney(t.price_cents, t.currency)}`)));
  const quantity = h("input", { type: "number", name: "quantity", min: 1, max: event.max_tickets_per_order, value: 1, required: true });
  const method = (value, label, checked) => h("label", { class: "check" },
    h("input", { type: "radio", name: "method", value, checked }), label);
  const problem = h("div");
  const payment = h("div");
  const button = h("button", { type: "submit" }, "Continue to payment");
  const form = h("form", { class: "card", "aria-labelledby": "choose-title", onsubmit: async (e) => {
    e.preventDefault();
    showProblem(problem, null);
    const chosen = form.querySelector("input[name=method]:checked").value;
    const release = busy(button, "Holding your seats…");
    try {
      const order = await placeOrder(event.id, Number(tierSelect.value), Number(quantity.value), chosen);
      if (order.checkout_problem) throw new ApiError(order.checkout_problem.status, order.checkout_problem);
      form.hidden = true;
      const final = chosen === "card" ? await payByCard(order, payment) : await payByEther(order, payment);
      if (final?.status === "fulfilled") onDone();
    } catch (error) { release(); mount(payment); form.hidden = false; showProblem(problem, error); }
  } },
  h("h2", { id: "choose-title" }, "Choose your tickets"),
  field("Tier", tierSelect),
  field("How many", quantity, `Up to ${event.max_tickets_per_order} per order.`),
  h("fieldset", {}, h("legend", {}, "Pay with"), method("card", "Card", true), method("crypto", "Ether (ETH) from my wallet", false)),
  button, problem);
  mount(container, form, payment);
  tierSelect.focus();
}

// Holds seats and starts paying in one request; an order this wallet already has open for the
// event (another tab, a refresh) is picked up again instead.
async function placeOrder(eventId, tierId, quantity, method) {
  try {
    const order = await post("/orders", { event_id: eventId, tier_id: tierId, quantity, checkout: { method } });
    localStorage.setItem(orderKey(eventId), String(order.id));
    return order;
  } catch (error) {
    const previous = localStorage.getItem(orderKey(eventId));
    if (!(error instanceof ApiError) || error.slug !== "order-in-progress" || !previous) throw error;
    const checkout = await post(`/orders/${previous}/checkout`, { method });
    return { ...(await get(`/orders/${previous}`)), checkout };
  }
}

async function payByCard(order, container) {
  const intent = order.checkout?.payment_intent;
  const formSlot = h("div");
  const follow = h("div");
  mount(container, formSlot, follow);
  try {
    await cardForm(formSlot, intent);
  } catch (error) {
    // A decline fails the order (by the provider's webhook) and releases its seats: wait for
    // that before offering a new order, or the new one would meet this one still open.
    mount(follow, h("p", { role: "status" }, "Releasing your seats…"), progress("Releasing your seats"));
    for (let i = 0; i < 30; i += 1) {
      const now = await get(`/orders/${order.id}`);
      if (now.status !== "awaiting_payment" && now.status !== "held") break;
      await sleep(500);
    }
    mount(follow);
    throw error;
  }
  return followOrder(order.id, follow);
}

async function payByEther(order, container) {
  const crypto = order.checkout.crypto;
  const status = h("div");
  const follow = h("div");
  const problem = h("div");
  const button = h("button", { type: "button" }, `Pay ${ethAmount(crypto.total_wei)} with my wallet`);
  let settle;
  const done = new Promise((resolve) => { settle = resolve; });
  button.addEventListener("click", async () => {
    showProblem(problem, null);
    const release = busy(button, "Check your wallet…");
    try {
      await payWithWallet(crypto.transaction, status);
      button.hidden = true;
      settle(await followOrder(order.id, follow));
    } catch (error) { release(); showProblem(problem, error); }
  });
  mount(container, h("section", { class: "card" },
    h("h3", {}, "Pay with ether"),
    h("p", {}, `Total ${ethAmount(crypto.total_wei)} plus network fee. Your seats are held until ${formatDate(new Date(crypto.deadline * 1000).toISOString())}.`),
    button, status, problem), follow);
  button.focus();
  return done;
}

export async function ticketsPage(main) {
  if (!requireSignIn(main, "My tickets")) return;
  const { tickets } = await get("/me/tickets");
  mount(main, h("h1", {}, "My tickets"),
    tickets.length ? h("ul", { class: "cards" }, tickets.map((t) => h("li", { class: "card" },
      h("h2", {}, t.event_name),
      h("p", {}, `Seat ${t.seat}`),
      h("p", { class: "meta" }, `Ticket #${t.token_id}`),
      t.event_cancelled ? alertBox("This event was cancelled.") : null,
      h("a", { class: "button", href: `#/tickets/${t.token_id}`, "aria-label": `Entry code & resale, ticket ${t.token_id}` }, "Entry code & resale"))))
      : h("p", {}, "You have no tickets yet. ", h("a", { href: "#/" }, "Find an event")),
    h("p", {}, h("a", { href: "#/payouts" }, "My resale payouts")));
}

export async function accountPage(main) {
  if (!requireSignIn(main, "Account")) return;
  const me = await get("/auth/me");
  let contact = null;
  try { contact = await get("/me/contact"); } catch (error) { if (error.status !== 404) throw error; }
  const problem = h("div");
  const email = h("input", { type: "email", name: "email", autocomplete: "email", value: contact?.email || "", required: true });
  const save = h("button", { type: "submit" }, "Save e-mail");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    showProblem(problem, null);
    const release = busy(save, "Saving…");
    try { await put("/me/contact", { email: email.value }); release(); mount(problem, h("p", { class: "notice ok", role: "status" }, "Saved. Receipts will go to this address.")); }
    catch (error) { release(); showProblem(problem, error); }
  } }, field("E-mail for receipts", email, "Kept by fairtix only, never on chain. Optional."), save);
  const exportButton = h("button", { type: "button", class: "secondary", onclick: async (e) => {
    const release = busy(e.currentTarget, "Collecting…");
    try {
      // Everything fairtix keeps about this wallet, table by table, as the API reads it out.
      const data = await get("/me/export");
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
      const link = h("a", { href: url, download: `fairtix-${me.address}.json` }, "Download");
      document.body.append(link); link.click(); link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      announce("Your data was downloaded");
    } catch (error) { showProblem(problem, error); }
    release();
  } }, "Export my data");
  const eraseButton = h("button", { type: "button", class: "danger", onclick: async (e) => {
    if (!confirm("Erase your personal data from fairtix and sign out here? Your tickets stay yours: they live on chain.")) return;
    const release = busy(e.currentTarget, "Erasing…");
    let erased;
    try { erased = await del("/me/data"); }
    catch (error) { release(); showProblem(problem, error); return; }
    // The API ended this session with the erasure: forget it here too, then say what happened.
    saveSession(null);
    announce("Your data was erased and you are signed out");
    mount(main, h("h1", {}, "Your data was erased"),
      h("p", { class: "notice ok", role: "status" },
        erased.contact_email_erased ? "Your e-mail address was erased." : "There was no e-mail address on file.",
        " You are signed out on this device; other devices stay signed in until they sign out or their session ends."),
      h("section", { class: "card" }, h("h2", {}, "What fairtix keeps, and why"),
        h("ul", {}, ...erased.kept.map((reason) => h("li", {}, reason)))),
      h("p", {}, h("a", { href: "#/" }, "See the events")));
  } }, "Erase my data");
  mount(main, h("h1", {}, "Account"),
    h("dl", { class: "facts" }, h("dt", {}, "Wallet"), h("dd", { class: "code" }, me.address),
      h("dt", {}, "Roles"), h("dd", {}, me.roles.length ? me.roles.join(", ") : "fan")),
    h("section", { class: "card" }, form),
    h("section", { class: "card" },
      h("h2", {}, "Your data"),
      h("p", {}, "fairtix keeps your wallet address, your orders and tickets (also public on chain) and, if you gave one, your e-mail address."),
      h("p", { class: "row" }, exportButton, eraseButton),
      h("p", { class: "hint" }, "Erasing removes your e-mail address and signs you out here. Orders stay as the law requires for receipts; tickets are on chain and stay in your wallet.")),
    problem);
}
