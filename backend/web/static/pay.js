// Paying: the card form (the sandbox's, or Stripe's Payment Element when the deployment has a
// publishable key), ether from the wallet, and following an order until its ticket exists.
import { get, post, ApiError } from "/web/api.js";
import { h, mount, field, busy, showProblem, announce, formatMoney, progress, sleep } from "/web/ui.js";
import { sendTransaction, siteConfig } from "/web/wallet.js";
import { formatEther } from "/web/vendor/ethers.min.js";

export function ethAmount(wei) {
  const text = formatEther(BigInt(wei));
  return `${text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text} ETH`;
}

// The card form for a payment intent; resolves once the card was accepted (the webhook that
// marks the order paid follows on its own). Stripe's Element when configured, else the sandbox.
export async function cardForm(container, intent) {
  const config = await siteConfig();
  if (config.stripe_publishable_key && intent.provider === "stripe") {
    return stripeElement(container, intent, config.stripe_publishable_key);
  }
  return new Promise((resolve, reject) => {
    const problem = h("div");
    const number = h("input", { name: "card", inputmode: "numeric", autocomplete: "cc-number", required: true, placeholder: "4242 4242 4242 4242" });
    const expiry = h("input", { name: "expiry", autocomplete: "cc-exp", required: true, placeholder: "MM/YY", value: "" });
    const cvc = h("input", { name: "cvc", inputmode: "numeric", autocomplete: "cc-csc", required: true, placeholder: "123", maxlength: 4 });
    const button = h("button", { type: "submit" }, `Pay ${formatMoney(intent.amount, intent.currency)}`);
    const form = h("form", { class: "card", "aria-labelledby": "card-title", onsubmit: async (e) => {
      e.preventDefault();
      showProblem(problem, null);
      const [mm, yy] = expiry.value.split("/").map((p) => parseInt(p.trim(), 10));
      const release = busy(button, "Paying…");
      try {
        const body = { client_secret: intent.client_secret, card_number: number.value };
        if (mm && yy) { body.exp_month = mm; body.exp_year = yy < 100 ? 2000 + yy : yy; }
        if (cvc.value) body.cvc = cvc.value;
        const paid = await post(`/sandbox/payment_intents/${encodeURIComponent(intent.id)}/confirm`, body, { auth: false });
        if (paid.status !== "succeeded") {
          // As with Stripe, a declined card is an answer, not an error; the decline releases the
          // order's hold, so the fan starts again from the tickets.
          form.replaceChildren();
          reject(new ApiError(402, { type: "https://fairtix.dev/problems/payment-declined", detail: "declined" }));
          return;
        }
        announce("Card accepted");
        form.replaceChildren(h("p", { class: "notice ok", role: "status" }, "Card accepted."));
        resolve(paid);
      } catch (error) { release(); showProblem(problem, error); }
    } },
    h("h3", { id: "card-title" }, "Pay by card"),
    h("p", { class: "hint" }, "Test mode: card 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined. Any future expiry and CVC."),
    field("Card number", number),
    h("div", { class: "grid2" }, field("Expiry (MM/YY)", expiry), field("CVC", cvc)),
    button, problem);
    mount(container, form);
    number.focus();
  });
}

// Stripe's Payment Element, loaded from Stripe only when a publishable key is configured.
async function stripeElement(container, intent, key) {
  if (!window.Stripe) {
    await new Promise((resolve, reject) => {
      const script = h("script", { src: "https://js.stripe.com/v3/" });
      script.addEventListener("load", resolve);
      script.addEventListener("error", () => reject(new Error("Stripe's card form didn't load.")));
      document.head.append(script);
    });
  }
  const stripe = window.Stripe(key);
  const elements = stripe.elements({ clientSecret: intent.client_secret });
  const slot = h("div");
  const problem = h("div");
  const button = h("button", { type: "submit" }, `Pay ${formatMoney(intent.amount, intent.currency)}`);
  return new Promise((resolve) => {
    const form = h("form", { class: "card", onsubmit: async (e) => {
      e.preventDefault();
      const release = busy(button, "Paying…");
      const { error } = await stripe.confirmPayment({ elements, redirect: "if_required" });
      if (error) { release(); showProblem(problem, new Error(error.message)); return; }
      form.replaceChildren(h("p", { class: "notice ok", role: "status" }, "Card accepted."));
      resolve(intent);
    } }, h("h3", {}, "Pay by card"), slot, button, problem);
    mount(container, form);
    elements.create("payment").mount(slot);
  });
}

// Sends the API's unsigned transaction from the wallet; returns the transaction hash.
export async function payWithWallet(tx, statusSlot) {
  mount(statusSlot, h("p", { role: "status" }, "Confirm the payment in your wallet…"));
  const sent = await sendTransaction(tx);
  mount(statusSlot, h("p", { role: "status" }, "Transaction sent: ", h("span", { class: "code" }, sent.hash)));
  announce("Transaction sent");
  return sent.hash;
}

const STEPS = [
  ["paid", "Payment received"],
  ["minting", "Your ticket is being written on chain"],
  ["fulfilled", "Ticket ready"],
];

function stepState(status) {
  if (status === "fulfilled") return 3;
  if (["paid", "minting", "minted"].includes(status)) return 1;
  return 0;
}

// Follows an order until it is fulfilled (or fails), showing where it is and for how long.
export async function followOrder(orderId, container, { timeoutMs = 180000 } = {}) {
  const started = Date.now();
  const list = h("ol", { class: "steps" });
  const elapsed = h("p", { class: "hint" });
  mount(container, h("section", { class: "card", "aria-live": "polite" },
    h("h3", {}, "Your order"), list, progress("Waiting for your ticket"), elapsed));
  let order = null;
  while (Date.now() - started < timeoutMs) {
    order = await get(`/orders/${orderId}`);
    const done = stepState(order.status);
    mount(list, STEPS.map(([, label], i) => h("li", { "data-state": i < done ? "done" : i === done ? "now" : "todo" }, label)));
    elapsed.textContent = `${Math.round((Date.now() - started) / 1000)} s so far`;
    if (order.status === "fulfilled") break;
    if (["failed", "cancelled", "expired", "refunded"].includes(order.status)) break;
    await sleep(1000);
  }
  if (order?.status === "fulfilled") {
    announce("Your ticket is ready");
    mount(container, h("section", { class: "card" },
      h("p", { class: "notice ok", role: "status" }, `Your ticket is ready (${order.token_ids.length} ticket${order.token_ids.length > 1 ? "s" : ""}).`),
      h("a", { class: "button", href: "#/tickets" }, "See my tickets")));
  } else if (order) {
    const why = order.failure_reason ? `: ${order.failure_reason}` : "";
    mount(container, h("p", { class: "notice error", role: "alert" },
      order.status === "failed" || order.status === "cancelled" || order.status === "expired"
        ? `This order didn't go through (${order.status}${why}). Nothing was charged for a failed card payment.`
        : "This is taking longer than usual. Your order is safe: check My tickets in a minute."));
  }
  return order;
}
