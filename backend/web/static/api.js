// The API as the site calls it: JSON in and out, the session's bearer token, and every
// problem+json answer turned into a sentence a person understands (ApiError.sentence).

const SESSION_KEY = "fairtix.session";

// What to tell a fan or an organizer for each problem type the API names (the slug after
// /problems/). Anything not listed falls back on the API's own `detail`, itself written for people.
const SENTENCES = {
  "auth-failed": "Your sign-in didn't work. Please sign in again.",
  "not-authenticated": "Please sign in with your wallet first.",
  "nonce-rejected": "That sign-in request expired. Please try signing in again.",
  "siwe-rejected": "The signed sign-in message was not accepted. Please sign in again.",
  "siwe-malformed": "Your wallet signed a message this site did not expect. Please try again.",
  "forbidden": "Your wallet doesn't have the role this page needs.",
  "not-event-organizer": "Only this event's organizer can do that.",
  "event-not-found": "We couldn't find that event.",
  "event-cancelled": "This event has been cancelled.",
  "event-over": "This event is over.",
  "sale-not-open": "Tickets are not on sale yet.",
  "sold-out": "There aren't enough tickets left for that.",
  "quantity-not-allowed": "You can't buy that many tickets in one order.",
  "order-in-progress": "You already have an order open for this event: finish or cancel it first.",
  "order-not-payable": "This order can't be paid any more (its hold may have run out).",
  "payment-method-conflict": "This order is already being paid another way.",
  "payment-declined": "Your card was declined. Try another card.",
  "card-rejected": "That card can't be charged. Check the number and try again.",
  "payment-provider-unavailable": "Card payments are briefly unavailable. Please try again in a minute.",
  "payment-provider-error": "The card processor had a problem. Please try again.",
  "not-admitted": "Your turn in the waiting room hasn't come yet (or it ran out). Rejoin the queue.",
  "not-in-queue": "You're not in this event's queue yet.",
  "queue-closed": "The waiting room is closed.",
  "queue-not-open": "The waiting room hasn't opened yet.",
  "queue-token-expired": "Your place needs refreshing: we're taking you back to the queue.",
  "invalid-queue-token": "Your saved place wasn't recognised. Rejoin the queue.",
  "queue-token-foreign": "That saved place belongs to another wallet or event.",
  "queue-unavailable": "The waiting room is briefly unavailable. Your place is kept; we'll retry.",
  "chain-unavailable": "The blockchain node isn't answering. Please try again shortly.",
  "ticket-not-found": "That ticket isn't in your wallet.",
  "entry-codes-not-yet-revealed": "Your entry code appears closer to the event (usually a day before).",
  "ticket-not-enterable": "This ticket can't be used for entry (refunded or event cancelled).",
  "not-ticket-holder": "You don't hold this ticket.",
  "holder-not-confirmed": "This ticket just moved on chain; wait a few seconds and try again.",
  "signature-not-by-holder": "The signature doesn't come from the ticket's holder.",
  "stale-sell-order": "This sell order is out of date. Please sign it again.",
  "price-above-cap": "That price is above the resale cap for this ticket.",
  "invalid-listing": "That listing isn't valid (check the price and the date).",
  "ticket-not-resellable": "This ticket can't be resold (already used or refunded).",
  "resale-closed": "Resale is closed for this event.",
  "listing-not-found": "We couldn't find that listing.",
  "listing-not-live": "That listing is no longer on the market.",
  "own-listing": "That's your own listing.",
  "not-listing-seller": "Only the seller can take this listing down.",
  "listing-reserved": "A card buyer is paying for this ticket right now. Try again in a few minutes.",
  "card-rail-unavailable": "Buying resale tickets by card isn't available here: buy with ETH instead.",
  "card-payout-not-allowed": "You can be paid back to a card only for a ticket you bought by card: choose ether.",
  "card-payout-above-payment": "That's more than your card paid for this ticket: lower the price or choose ether.",
  "contact-not-found": "You have no e-mail address on file.",
  "invalid-contact": "That e-mail address doesn't look right.",
  "scanner-not-authenticated": "This scanner needs its device credential.",
  "scanner-revoked": "This scanner device was revoked by the organizer.",
  "scan-time-out-of-window": "This device's clock is off; check its date and time.",
  "rate-limited": "Too many requests; please wait a moment.",
  "session-store-unavailable": "Signing out is briefly unavailable; please try again.",
  "invalid-event": "The event isn't valid.",
  "event-deployment-failed": "The event's contract couldn't be deployed. Please try again.",
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.slug = (problem.type || "").split("/").pop();
  }

  get sentence() {
    return problemSentence(this.status, this.problem);
  }
}

function fieldName(loc) {
  const parts = (loc || []).filter((p) => p !== "body" && p !== "query" && p !== "path");
  return parts.join(" ").replaceAll("_", " ");
}

export function problemSentence(status, problem) {
  const slug = (problem.type || "").split("/").pop();
  if (slug === "validation-failed" && Array.isArray(problem.errors) && problem.errors.length) {
    const e = problem.errors[0];
    return `Please check ${fieldName(e.loc) || "the form"}: ${e.msg}.`;
  }
  if (SENTENCES[slug]) {
    // Where the API's detail adds what the general sentence can't know (a cap, a date), keep it.
    const withDetail = ["price-above-cap", "invalid-listing", "invalid-event", "sold-out"];
    return withDetail.includes(slug) && problem.detail
      ? `${SENTENCES[slug]} (${problem.detail})` : SENTENCES[slug];
  }
  if (problem.detail) return problem.detail;
  if (status >= 500) return "Something went wrong on our side. Please try again.";
  return problem.title || `The request failed (${status}).`;
}

export function session() {
  try {
    const stored = JSON.parse(localStorage.getItem(SESSION_KEY) || "null");
    if (stored && new Date(stored.expires_at) > new Date()) return stored;
  } catch { /* a damaged entry counts as none */ }
  return null;
}

export function saveSession(value) {
  if (value) localStorage.setItem(SESSION_KEY, JSON.stringify(value));
  else localStorage.removeItem(SESSION_KEY);
  window.dispatchEvent(new CustomEvent("fairtix:session"));
}

export async function api(method, path, { body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  const current = session();
  if (auth && current) init.headers.Authorization = `Bearer ${current.token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { detail: "We can't reach fairtix. Check your connection and try again." });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!response.ok) {
    const error = new ApiError(response.status, data || {});
    // Only a refused session forgets the session: a queue token's 401 is about the place.
    if (response.status === 401 && current && auth && ["auth-failed", "not-authenticated"].includes(error.slug)) {
      saveSession(null);
    }
    throw error;
  }
  return data;
}

export const get = (path, opts) => api("GET", path, opts);
export const post = (path, body, opts = {}) => api("POST", path, { ...opts, body });
export const put = (path, body, opts = {}) => api("PUT", path, { ...opts, body });
export const del = (path, opts) => api("DELETE", path, opts);
