// A ticket (its rotating entry code, listing it for resale, delisting, its history), the resale
// market (browse, buy with ether or by card) and the seller's payouts.
import { get, post, del, session, ApiError } from "/web/api.js";
import {
  h, mount, field, busy, showProblem, announce, every, onLeave, formatMoney, formatDate, formatDuration,
  progress, alertBox, sleep, shortAddress,
} from "/web/ui.js";
import { requireSignIn } from "/web/signin.js";
import { signTypedData, signer } from "/web/wallet.js";
import { cardForm, payWithWallet, ethAmount } from "/web/pay.js";
import { Contract, parseEther } from "/web/vendor/ethers.min.js";

export async function marketPage(main) {
  const events = (await get("/events", { auth: false })).filter((e) => !e.cancelled && e.resale_enabled);
  const rows = await Promise.all(events.map(async (e) => {
    const page = await get(`/events/${e.id}/listings?limit=100`, { auth: false }).catch(() => ({ listings: [] }));
    return { event: e, count: page.listings.length };
  }));
  mount(main, h("h1", {}, "Resale market"),
    h("p", {}, "Tickets resold by fans, never above the organizer's cap. You pay the listed price; the seller and the organizer are paid on chain."),
    rows.length ? h("ul", { class: "cards" }, rows.map(({ event, count }) => h("li", { class: "card" },
      h("h2", {}, h("a", { href: `#/events/${event.id}/market` }, event.name)),
      h("p", { class: "meta" }, formatDate(event.starts_at)),
      h("p", {}, count ? `${count} ticket${count > 1 ? "s" : ""} for sale` : "Nothing for sale right now"))))
      : h("p", {}, "No event has resale open."));
}

export async function eventMarketPage(main, id) {
  const event = await get(`/events/${id}`, { auth: false });
  const list = h("div", { "aria-live": "polite" });
  const problem = h("div");
  const buying = h("div");
  const me = session()?.address?.toLowerCase();
  let buyingNow = false;
  const fill = async () => {
    if (buyingNow) return; // the list stays as it is while a purchase is under way
    const { listings } = await get(`/events/${id}/listings?limit=100`, { auth: false });
    if (!listings.length) { mount(list, h("p", {}, "No tickets for sale right now.")); return; }
    mount(list, h("ul", { class: "cards" }, listings.map((l) => h("li", { class: "card" },
      h("h2", {}, `${l.tier_name} · ${l.seat}`),
      h("p", { class: "big" }, ethAmount(l.price_wei)),
      l.price_cents !== null ? h("p", { class: "meta" }, `or ${formatMoney(l.price_cents, l.currency)} by card`) : null,
      h("p", { class: "meta" }, `Face value ${ethAmount(l.face_price_wei)} · ticket #${l.token_id}`),
      l.seller_address.toLowerCase() === me ? h("p", { class: "hint" }, "Your listing")
        : h("p", { class: "row" },
          h("button", { type: "button", "aria-label": `Buy with ETH: seat ${l.seat}`, onclick: (e) => buy(l, "crypto", e.currentTarget) }, "Buy with ETH"),
          h("button", { type: "button", class: "secondary", "aria-label": `Buy by card: seat ${l.seat}`, onclick: (e) => buy(l, "card", e.currentTarget) }, "Buy by card"))))));
  };
  const buy = async (listing, method, button) => {
    showProblem(problem, null);
    if (!session()) { location.hash = `#/signin?next=${encodeURIComponent(location.hash)}`; return; }
    const release = busy(button, method === "crypto" ? "Check your wallet…" : "Starting…");
    buyingNow = true;
    try {
      const answer = await post(`/listings/${listing.id}/buy`, { method });
      if (method === "crypto") {
        await payWithWallet(answer.transaction, buying);
      } else {
        const intent = answer.payment_intent || answer.checkout?.payment_intent;
        if (!intent) throw new Error("Buying by card isn't available for this listing.");
        const formSlot = h("div");
        mount(buying, formSlot);
        await cardForm(formSlot, intent);
      }
      await followListing(listing.id, buying);
      release();
      buyingNow = false;
      await fill();
    } catch (error) {
      release();
      buyingNow = false;
      // Before the card rail, the API knows only "crypto": say so rather than quote a schema.
      const noCardRail = method === "card" && error instanceof ApiError && error.slug === "validation-failed";
      showProblem(problem, noCardRail ? { sentence: "Buying resale tickets by card isn't available here yet: buy with ETH instead." } : error);
    }
  };
  await fill();
  every(10000, fill);
  mount(main, h("h1", {}, `${event.name}: resale`), problem, buying, list);
}

// Waits until the indexer records the sale (the listing turns `sold`).
async function followListing(listingId, container) {
  const started = Date.now();
  const note = h("p", { class: "hint" });
  mount(container, h("section", { class: "card", "aria-live": "polite" },
    h("h3", {}, "Completing your purchase"),
    h("p", {}, "Waiting for the sale to be confirmed on chain…"), progress("Confirming the sale"), note));
  while (Date.now() - started < 180000) {
    const listing = await get(`/listings/${listingId}`, { auth: false });
    if (listing.status === "sold") {
      announce("The ticket is yours");
      mount(container, h("section", { class: "card" },
        h("p", { class: "notice ok", role: "status" }, `Ticket #${listing.token_id} is yours.`),
        h("a", { class: "button", href: `#/tickets/${listing.token_id}` }, "Show my ticket")));
      return listing;
    }
    if (["void", "expired", "delisted"].includes(listing.status) && listing.buyer_address === null && Date.now() - started > 30000) {
      throw new Error("The listing left the market before your purchase was confirmed. If your payment went through, it will be refunded.");
    }
    note.textContent = `${Math.round((Date.now() - started) / 1000)} s so far`;
    await sleep(1000);
  }
  throw new Error("This is taking longer than usual; check My tickets in a minute.");
}

function entrySection(tokenId) {
  const box = h("section", { class: "card qr", "aria-labelledby": "entry-title" });
  let timer = null;
  let ticking = null;
  let left = true;
  onLeave(() => { left = false; clearTimeout(timer); clearInterval(ticking); });
  // Fetched again shortly before each code runs out, so the QR on screen is always valid.
  const load = async () => {
    if (!left) return;
    clearInterval(ticking);
    try {
      const entry = await get(`/me/tickets/${tokenId}/entry`);
      const until = new Date(entry.valid_until);
      const remaining = () => `Refreshes in ${formatDuration((until - new Date()) / 1000)}`;
      const note = h("p", { class: "hint" }, remaining());
      mount(box,
        h("h2", { id: "entry-title" }, "Entry code"),
        h("img", { src: `data:image/png;base64,${entry.qr_png_base64}`, alt: `Entry QR code for ticket ${tokenId}`, width: 280, height: 280 }),
        h("p", { class: "code", "data-testid": "entry-code" }, entry.code),
        note,
        h("p", { class: "hint" }, "Show this at the door. It changes every few seconds, so a screenshot won't work."));
      ticking = setInterval(() => { note.textContent = remaining(); }, 1000);
      timer = setTimeout(load, Math.min(Math.max(2000, until - new Date() - 3000), 15000));
    } catch (error) {
      mount(box, h("h2", { id: "entry-title" }, "Entry code"), h("div"));
      showProblem(box.lastChild, error);
    }
  };
  load();
  return box;
}

export async function ticketPage(main, tokenId) {
  if (!requireSignIn(main, "Ticket")) return;
  const { tickets } = await get("/me/tickets");
  const ticket = tickets.find((t) => String(t.token_id) === String(tokenId));
  if (!ticket) {
    mount(main, h("h1", {}, "Ticket"), alertBox("This ticket isn't in your wallet (any more)."), h("a", { href: "#/tickets" }, "My tickets"));
    return;
  }
  const myListings = (await get("/me/listings?limit=100")).listings.filter((l) => String(l.token_id) === String(tokenId));
  const live = myListings.find((l) => l.status === "live");
  const sale = h("section", { class: "card", "aria-labelledby": "sell-title" });
  if (live) showLive(sale, live); else await sellForm(sale, ticket);
  mount(main,
    h("h1", {}, `${ticket.event_name}`),
    h("p", {}, `Seat ${ticket.seat} · ticket #${ticket.token_id}`),
    ticket.event_cancelled ? alertBox("This event was cancelled.") : null,
    ticket.event_cancelled ? refundSection(ticket) : entrySection(tokenId),
    ticket.event_cancelled ? null : sale,
    await historySection(ticket, myListings));
}

const REFUND_ABI = ["function claimRefund(uint256 tokenId)"];

// A cancelled event: ether paid for a ticket waits in the contract's escrow for its holder to
// claim; a card-bought ticket is refunded to its card by fairtix (nothing to do here).
function refundSection(ticket) {
  const problem = h("div");
  const note = h("p", {}, "If you paid by card, the refund goes back to that card on its own. If the ticket was paid in ether, claim it here: the ether goes to your wallet.");
  const button = h("button", { type: "button" }, "Claim my ether refund");
  button.addEventListener("click", async () => {
    showProblem(problem, null);
    const release = busy(button, "Check your wallet…");
    try {
      const contract = new Contract(ticket.contract_address, REFUND_ABI, await signer());
      const tx = await contract.claimRefund(ticket.token_id);
      mount(problem, h("p", { role: "status" }, "Refund sent, waiting for it to be mined…"), progress("Claiming the refund"));
      await tx.wait();
      announce("Refund claimed");
      button.hidden = true;
      mount(problem, h("p", { class: "notice ok", role: "status" }, "Refund claimed: the ether is in your wallet."));
    } catch (error) {
      release();
      // The contract refuses a ticket with no ether in escrow (bought by card), or before the
      // cancellation reached the chain.
      const reverted = error?.code === "CALL_EXCEPTION" || /revert/i.test(error?.message || "");
      showProblem(problem, reverted
        ? { sentence: "There's no ether to claim for this ticket yet: a card purchase is refunded to the card, and an ether refund opens once the cancellation is on chain (try again in a minute)." }
        : error);
    }
  });
  return h("section", { class: "card", "aria-labelledby": "refund-title" }, h("h2", { id: "refund-title" }, "Refund"), note, button, problem);
}

function showLive(container, listing) {
  const problem = h("div");
  const button = h("button", { type: "button", class: "secondary" }, "Take it off the market");
  button.addEventListener("click", async () => {
    const release = busy(button, "Delisting…");
    try {
      const answer = await del(`/listings/${listing.id}`);
      announce("Delisted");
      mount(container, h("h2", { id: "sell-title" }, "Resale"),
        h("p", { class: "notice ok", role: "status" }, "Your ticket is off the market."),
        h("p", { class: "hint" }, answer.note || "A buyer who already fetched your signed order could still fill it until you cancel it on chain."));
    } catch (error) { release(); showProblem(problem, error); }
  });
  mount(container, h("h2", { id: "sell-title" }, "Resale"),
    h("p", {}, `Listed for ${ethAmount(listing.price_wei)}; you receive ${ethAmount(listing.seller_receives_wei)} when it sells.`),
    h("p", { class: "hint" }, `Until ${formatDate(listing.expires_at)}.`), button, problem);
}

async function sellForm(container, ticket) {
  const policy = await get(`/events/${ticket.event_id}/resale`, { auth: false });
  if (!policy.open) {
    mount(container, h("h2", { id: "sell-title" }, "Resale"), h("p", {}, "Resale is closed for this event."));
    return;
  }
  const price = h("input", { name: "price", inputmode: "decimal", required: true, placeholder: "0.01" });
  // How the seller is paid, chosen when signing (the order names fairtix's treasury as payee
  // for a card payout): ether credited on chain, or back to the card that bought the ticket.
  const payoutChoice = (value, label, checked) => h("label", { class: "check" },
    h("input", { type: "radio", name: "payout", value, checked }), label);
  const payout = h("fieldset", {},
    h("legend", {}, "Pay me"),
    payoutChoice("ether", "In ether, credited to my wallet on chain (withdraw it from My payouts)", true),
    payoutChoice("card", "Back to the card I paid with (only for a ticket bought by card)", false));
  const problem = h("div");
  const preview = h("div", { "aria-live": "polite" });
  const check = h("button", { type: "submit" }, "See what I'd receive");
  const form = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    showProblem(problem, null);
    let wei;
    try { wei = parseEther(price.value.trim().replace(",", ".")); } catch { showProblem(problem, new Error("Enter the price in ETH, e.g. 0.01.")); return; }
    const release = busy(check, "Checking…");
    try {
      const chosen = form.querySelector("input[name=payout]:checked").value;
      const order = await post("/listings/sell-order", { event_id: ticket.event_id, token_id: ticket.token_id, price_wei: wei.toString(), payout: chosen });
      release();
      showTerms(preview, order, ticket, container, chosen);
    } catch (error) { release(); showProblem(problem, error); }
  } },
  field("Price (ETH)", price, `At most ${policy.resale_cap_bps / 100}% of what the ticket cost; the organizer takes ${policy.royalty_bps / 100}%.`),
  payout, check, problem);
  mount(container, h("h2", { id: "sell-title" }, "Sell this ticket"), form, preview);
}

// What the ticket would list as, before anything is signed: price, cap, royalty, what I get.
function showTerms(container, order, ticket, section, payout) {
  const l = order.listing;
  const problem = h("div");
  const sign = h("button", { type: "button" }, "Sign and list");
  sign.addEventListener("click", async () => {
    showProblem(problem, null);
    const release = busy(sign, "Check your wallet…");
    try {
      const signature = await signTypedData(order.typed_data);
      const m = order.typed_data.message;
      const listing = await post("/listings", {
        event_id: ticket.event_id, token_id: ticket.token_id, price_wei: String(m.price),
        nonce: Number(m.nonce), deadline: Number(m.deadline), signature, payout,
      });
      announce("Your ticket is listed");
      showLive(section, listing);
    } catch (error) { release(); showProblem(problem, error); }
  });
  mount(container, h("div", { class: "notice" },
    h("dl", { class: "facts" },
      h("dt", {}, "Price"), h("dd", {}, ethAmount(l.price_wei)),
      h("dt", {}, "Highest allowed"), h("dd", {}, ethAmount(l.cap_wei)),
      h("dt", {}, "Organizer's royalty"), h("dd", {}, `${ethAmount(l.royalty_wei)} (${l.royalty_bps / 100}%)`),
      h("dt", {}, "You receive"), h("dd", { "data-testid": "seller-receives" }, ethAmount(l.seller_receives_wei)),
      h("dt", {}, "Paid"), h("dd", {}, l.payout === "card"
        ? `back to your card: ${formatMoney(l.payout_cents, l.currency)}`
        : "in ether, credited on chain"),
      h("dt", {}, "Listed until"), h("dd", {}, formatDate(l.expires_at))),
    h("p", { class: "hint" }, "Listing costs no gas: your wallet signs a sell order that a buyer settles on chain. You can take it down at any time."),
    sign, problem));
  sign.focus();
}

async function historySection(ticket, listings) {
  const items = [];
  try {
    const order = await get(`/orders/${ticket.order_id}`);
    for (const t of order.transitions) items.push([t.at, `Order ${t.to_status.replaceAll("_", " ")}`]);
  } catch { items.push([null, "Bought on the resale market (or received from another wallet)."]); }
  for (const l of listings) {
    items.push([l.created_at, `Listed for ${ethAmount(l.price_wei)}`]);
    if (l.status !== "live") items.push([null, `Listing ${l.status}${l.status_reason ? ` (${l.status_reason})` : ""}`]);
  }
  items.sort((a, b) => (a[0] && b[0] ? new Date(a[0]) - new Date(b[0]) : 0));
  return h("section", { class: "card" }, h("h2", {}, "History"),
    h("ol", {}, items.map(([at, text]) => h("li", {}, at ? `${formatDate(at)}: ${text}` : text))),
    h("p", { class: "hint" }, "Minted in transaction ", h("span", { class: "code" }, shortAddress(ticket.tx_hash)), "."));
}

export async function payoutsPage(main) {
  if (!requireSignIn(main, "My payouts")) return;
  const sold = (await get("/me/listings?limit=100")).listings.filter((l) => l.status === "sold");
  let payouts = null;
  let unavailable = null;
  try { payouts = await get("/me/payouts"); } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    unavailable = "Payout statements aren't available on this fairtix yet.";
  }
  mount(main, h("h1", {}, "My payouts"),
    unavailable ? h("p", { class: "notice" }, unavailable) : payoutsTable(payouts),
    h("h2", {}, "Tickets I sold"),
    sold.length ? h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Ticket", "Sold for", "I receive", "Transaction"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, sold.map((l) => h("tr", {}, h("td", {}, `#${l.token_id} (${l.tier_name})`), h("td", {}, ethAmount(l.price_wei)),
        h("td", {}, ethAmount(l.seller_receives_wei)), h("td", { class: "code" }, shortAddress(l.sold_tx_hash || "")))))))
      : h("p", {}, "You haven't sold a ticket yet."),
    h("h2", {}, "Ether to withdraw"),
    await withdrawals(sold));
}

const CREDIT_ABI = ["function creditOf(address account) view returns (uint256)", "function withdraw()"];

// Ether from a resale is credited in each event's contract; the seller's wallet withdraws it.
async function withdrawals(sold) {
  const contracts = [...new Set(sold.map((l) => l.contract_address))];
  if (!contracts.length) return h("p", {}, "Nothing to withdraw.");
  const out = h("div", { "aria-live": "polite" });
  try {
    const wallet = await signer();
    const me = await wallet.getAddress();
    const rows = [];
    for (const address of contracts) {
      const contract = new Contract(address, CREDIT_ABI, wallet);
      const credit = await contract.creditOf(me);
      const name = sold.find((l) => l.contract_address === address)?.tier_name;
      const problem = h("div");
      const button = h("button", { type: "button" }, `Withdraw ${ethAmount(credit)}`);
      button.disabled = credit === 0n;
      button.addEventListener("click", async () => {
        showProblem(problem, null);
        const release = busy(button, "Check your wallet…");
        try {
          const tx = await contract.withdraw();
          await tx.wait();
          announce("Withdrawn");
          mount(problem, h("p", { class: "notice ok", role: "status" }, `Withdrawn: ${ethAmount(credit)} is in your wallet.`));
          credited.textContent = `${ethAmount(0n)} credited`;
          button.hidden = true;
        } catch (error) { release(); showProblem(problem, error); }
      });
      const credited = h("strong", {}, `${ethAmount(credit)} credited`);
      rows.push(h("div", { class: "card" },
        h("p", {}, `Event contract ${shortAddress(address)}${name ? ` (${name})` : ""}: `, credited),
        button, problem));
    }
    mount(out, rows);
  } catch (error) {
    mount(out, h("p", { class: "hint" }, "Connect your wallet to see and withdraw what the event contracts hold for you."));
  }
  return out;
}

const PAYOUT_STATUS = {
  credited: "In the event's contract: withdraw it with your wallet",
  pending: "On its way to your card",
  paid: "Paid to your card",
  failed: "Failed: contact the organizer",
  reverted: "Undone (the sale was reversed on chain)",
  reverted_after_paid: "Undone after it was paid",
};

function payoutsTable(payouts) {
  const rows = Array.isArray(payouts) ? payouts : payouts?.payouts || [];
  if (!rows.length) return h("p", {}, "No payouts yet.");
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Ticket", "Amount", "Status", "When"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((p) => h("tr", {},
      h("td", {}, `#${p.token_id}`),
      h("td", {}, p.amount_cents !== null && p.amount_cents !== undefined && p.currency
        ? formatMoney(p.amount_cents, p.currency) : ethAmount(p.amount_wei || "0")),
      h("td", {}, PAYOUT_STATUS[p.status] || String(p.status)),
      h("td", {}, formatDate(p.paid_at || p.created_at)))))));
}
