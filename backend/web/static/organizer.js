// Organizers' pages: their events, creating one, the live sales page (sales, queue and its
// controls, resale, door, scanner devices) and cancelling an event.
import { get, post, put, session } from "/web/api.js";
import { h, mount, field, busy, showProblem, announce, every, formatMoney, formatDate, alertBox, progress } from "/web/ui.js";
import { requireSignIn } from "/web/signin.js";
import { ethAmount } from "/web/pay.js";

function isOrganizer() {
  const roles = session()?.roles || [];
  return roles.includes("organizer") || roles.includes("admin");
}

export async function organizerPage(main) {
  if (!requireSignIn(main, "Organizer")) return;
  const me = session().address.toLowerCase();
  const mine = (await get("/events?limit=500", { auth: false })).filter((e) => e.organizer_address.toLowerCase() === me || session().roles.includes("admin"));
  mount(main, h("h1", {}, "Organizer"),
    isOrganizer() ? h("p", {}, h("a", { class: "button", href: "#/organizer/new" }, "Create an event"))
      : alertBox("Your wallet has no organizer role. An admin can grant it.", "warn"),
    h("h2", {}, "Your events"),
    mine.length ? h("ul", { class: "cards" }, mine.map((e) => h("li", { class: "card" },
      h("h3", {}, e.name), h("p", { class: "meta" }, formatDate(e.starts_at)),
      e.cancelled ? h("p", {}, "Cancelled") : null,
      h("a", { class: "button secondary", href: `#/organizer/events/${e.id}`, "aria-label": `Live sales for ${e.name}` }, "Live sales"))))
      : h("p", {}, "No events yet."));
}

function localInput(name, date) {
  const pad = (n) => String(n).padStart(2, "0");
  const value = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return h("input", { type: "datetime-local", name, value, required: true });
}

function tierRow(index) {
  return h("fieldset", { class: "tier" }, h("legend", {}, `Tier ${index + 1}`),
    h("div", { class: "grid2" },
      field("Tier name", h("input", { name: "tier_name", required: true, value: index ? "" : "General Admission" })),
      field("Price (card, in currency units)", h("input", { name: "tier_price", inputmode: "decimal", required: true, value: index ? "" : "25.00" })),
      field("Tickets", h("input", { name: "tier_supply", type: "number", min: 1, required: true, value: index ? "" : 100 })),
      field("Per wallet at most", h("input", { name: "tier_limit", type: "number", min: 1, value: 4 }))));
}

export async function createEventPage(main) {
  if (!requireSignIn(main, "Create an event")) return;
  const now = new Date();
  const tiers = h("div", {}, tierRow(0));
  const problem = h("div");
  const status = h("div", { "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Create event");
  const form = h("form", { class: "card", novalidate: false, onsubmit: async (e) => {
    e.preventDefault();
    showProblem(problem, null);
    const data = new FormData(form);
    const num = (k) => (data.get(k) === "" || data.get(k) === null ? null : Number(data.get(k)));
    const iso = (k) => (data.get(k) ? new Date(data.get(k)).toISOString() : null);
    const names = data.getAll("tier_name"), prices = data.getAll("tier_price"), supplies = data.getAll("tier_supply"), limits = data.getAll("tier_limit");
    const body = {
      name: data.get("name"), venue: data.get("venue"), description: data.get("description"),
      starts_at: iso("starts_at"), sale_opens_at: iso("sale_opens_at"),
      tiers: names.map((n, i) => ({ name: n, price_cents: Math.round(Number(String(prices[i]).replace(",", ".")) * 100), supply: Number(supplies[i]), per_wallet_limit: Number(limits[i] || 4) })),
      transfers_locked: data.get("transfers_locked") === "on",
      resale_enabled: data.get("resale_enabled") === "on",
      resale_closes_before_seconds: Math.round((num("resale_closes_hours") || 0) * 3600),
    };
    if (iso("ends_at")) body.ends_at = iso("ends_at");
    if (iso("queue_opens_at")) body.queue_opens_at = iso("queue_opens_at");
    if (num("resale_cap") !== null) body.resale_cap_bps = Math.round(num("resale_cap") * 100);
    if (num("royalty") !== null) body.royalty_bps = Math.round(num("royalty") * 100);
    if (num("admissions_per_minute") !== null) body.admissions_per_minute = num("admissions_per_minute");
    if (num("max_admitted") !== null) body.max_admitted = num("max_admitted");
    const release = busy(submit, "Creating…");
    mount(status, h("p", { role: "status" }, "Deploying the event's ticket contract: this takes a few seconds."), progress("Deploying the contract"));
    try {
      const event = await post("/admin/events", body);
      announce("Event created");
      location.hash = `#/organizer/events/${event.id}`;
    } catch (error) { release(); mount(status); showProblem(problem, error); }
  } },
  field("Event name", h("input", { name: "name", required: true, maxlength: 200 })),
  field("Venue", h("input", { name: "venue", maxlength: 200 })),
  field("Description", h("textarea", { name: "description", rows: 3, maxlength: 5000 })),
  h("fieldset", {}, h("legend", {}, "Schedule"), h("div", { class: "grid2" },
    field("Starts", localInput("starts_at", new Date(now.getTime() + 7 * 86400000))),
    field("Sale opens", localInput("sale_opens_at", now)),
    field("Ends (optional)", h("input", { type: "datetime-local", name: "ends_at" })),
    field("Waiting room opens (optional)", h("input", { type: "datetime-local", name: "queue_opens_at" }), "Empty: at once. Everyone who joins before the sale is put in a random order."))),
  h("fieldset", {}, h("legend", {}, "Tickets"), tiers,
    h("button", { type: "button", class: "secondary", onclick: () => tiers.append(tierRow(tiers.children.length)) }, "Add a tier")),
  h("fieldset", {}, h("legend", {}, "Resale"),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "resale_enabled", checked: true }), "Fans may resell their tickets"),
    h("div", { class: "grid2" },
      field("Resale cap (% of face value)", h("input", { name: "resale_cap", type: "number", min: 0, max: 655, step: "0.01" }), "Empty: the service's default."),
      field("Royalty (% of each resale)", h("input", { name: "royalty", type: "number", min: 0, max: 100, step: "0.01" }), "Empty: the service's default."),
      field("Resale closes before the start (hours)", h("input", { name: "resale_closes_hours", type: "number", min: 0, step: "0.5", value: 0 }))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "transfers_locked", checked: true }), "Lock direct transfers (tickets move only through capped resale)")),
  h("fieldset", {}, h("legend", {}, "Waiting room"), h("div", { class: "grid2" },
    field("Admissions per minute", h("input", { name: "admissions_per_minute", type: "number", min: 1 })),
    field("Admitted at once, at most", h("input", { name: "max_admitted", type: "number", min: 1 })))),
  submit, status, problem);
  mount(main, h("h1", {}, "Create an event"), form);
}

function table(headers, rows) {
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
}

function counts(obj) {
  const entries = Object.entries(obj || {});
  return entries.length ? entries.map(([k, v]) => `${k.replaceAll("_", " ")}: ${v}`).join(" · ") : "none";
}

export async function salesPage(main, id) {
  if (!requireSignIn(main, "Live sales")) return;
  const event = await get(`/events/${id}`, { auth: false });
  const problem = h("div");
  const sales = h("section", { class: "card", "aria-labelledby": "sales-title" });
  const queue = h("section", { class: "card", "aria-labelledby": "queue-title" });
  const door = h("section", { class: "card", "aria-labelledby": "door-title" });
  const updated = h("p", { class: "hint", "aria-live": "off" });
  const queueView = h("div", { "data-testid": "queue-state" });
  const controls = h("div", { class: "row" });
  const control = (action, label) => h("button", { type: "button", class: "secondary", onclick: async (e) => {
    const release = busy(e.currentTarget);
    try { await post(`/admin/events/${id}/queue/${action}`); announce(`Queue: ${label}`); await refresh(); } catch (error) { showProblem(problem, error); }
    release();
  } }, label);
  mount(controls, control("pause", "Pause"), control("resume", "Resume"), control("close", "Close"), control("reopen", "Reopen"));
  const rate = h("input", { type: "number", name: "rate", min: 1 });
  const cap = h("input", { type: "number", name: "cap", min: 1 });
  const ratesForm = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    try {
      await post(`/admin/events/${id}/queue/rates`, { admissions_per_minute: rate.value ? Number(rate.value) : null, max_admitted: cap.value ? Number(cap.value) : null });
      announce("Rates updated"); await refresh();
    } catch (error) { showProblem(problem, error); }
  } }, h("div", { class: "grid2" }, field("Admissions per minute", rate), field("Admitted at once", cap)), h("button", { type: "submit", class: "secondary" }, "Set rates"));
  mount(queue, h("h2", { id: "queue-title" }, "Waiting room"), queueView, controls, ratesForm);
  const doorView = h("div");
  mount(door, h("h2", { id: "door-title" }, "Door"), doorView, scannerForm(id, problem));

  const refresh = async () => {
    const [report, q, d] = await Promise.all([
      get(`/admin/events/${id}/sales`), get(`/admin/events/${id}/queue`), get(`/admin/events/${id}/door`),
    ]);
    mount(sales, h("h2", { id: "sales-title" }, "Sales"),
      h("p", { class: "big", "data-testid": "tickets-sold" }, `${report.tickets_sold} sold`),
      table(["Tier", "Sold", "Off sale", "Supply", "Taken"], report.tiers.map((t) => [t.name, String(t.tickets_sold), String(t.reserved), String(t.supply), formatMoney(t.gross_cents, t.currency)])),
      h("p", {}, `Orders: ${counts(report.orders_by_status)}`),
      h("p", {}, `Refunds pending ${report.refunds_pending}, done ${report.refunds_done} · chargebacks: ${counts(report.disputes_by_status)}`),
      h("h3", {}, "Resale"),
      h("p", { "data-testid": "resale-activity" }, `${report.resale.resales} resold · volume ${ethAmount(report.resale.volume_wei)} · royalties ${ethAmount(report.resale.royalties_wei)} · ${report.resale.on_market} on the market now`));
    rate.placeholder = String(q.controls.admissions_per_minute);
    cap.placeholder = String(q.controls.max_admitted);
    mount(queueView,
      h("p", {}, q.controls.closed ? "Closed" : q.controls.paused ? "Paused" : "Admitting"),
      h("p", {}, `Waiting ${q.waiting} · admitted ${q.admitted} · done ${q.done} · expired ${q.expired} · away ${q.away}`),
      h("p", { class: "hint" }, `Measured outflow ${q.measured_outflow_per_minute ?? "–"}/min · pace ${q.controls.admissions_per_minute}/min, at most ${q.controls.max_admitted} at once`));
    mount(doorView,
      h("p", { class: "big", "data-testid": "door-admitted" }, `${d.admitted} admitted`),
      h("p", {}, `Refused: ${counts(d.refusals_by_reason)}`),
      d.devices.length ? table(["Gate", "Device", "Scans", "Last seen"], d.devices.map((v) => [v.gate, v.label, String(v.scans), v.last_seen_at ? formatDate(v.last_seen_at) : "never"])) : h("p", {}, "No scanner devices yet."),
      d.conflicts.length ? alertBox(`${d.conflicts.length} offline conflict(s): a ticket let in twice while a gate was offline.`, "warn") : null);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  await refresh();
  every(3000, refresh);
  mount(main, h("h1", {}, `${event.name}: live sales`), updated, problem,
    event.cancelled ? alertBox(`Cancelled: ${event.cancellation?.reason}`) : null,
    sales, event.cancelled ? null : await resalePolicySection(id, problem), queue, door,
    event.cancelled ? null : cancelSection(id));
}

async function resalePolicySection(eventId, problem) {
  const policy = await get(`/events/${eventId}/resale`, { auth: false });
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: policy.enabled });
  const hours = h("input", { type: "number", name: "closes_hours", min: 0, step: "0.5", value: policy.closes_before_seconds / 3600 });
  const state = h("p", { "aria-live": "polite" });
  const describe = (p) => { state.textContent = p.open ? `Resale is open until ${formatDate(p.closes_at)}.` : "Resale is closed."; };
  describe(policy);
  const submit = h("button", { type: "submit", class: "secondary" }, "Save resale policy");
  return h("section", { class: "card", "aria-labelledby": "policy-title" }, h("h2", { id: "policy-title" }, "Resale policy"), state,
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      if (!enabled.checked && !confirm("Turn resale off? Every listing comes off the market.")) return;
      const release = busy(submit, "Saving…");
      try {
        describe(await put(`/admin/events/${eventId}/resale`, { enabled: enabled.checked, closes_before_seconds: Math.round(Number(hours.value || 0) * 3600) }));
        announce("Resale policy saved");
      } catch (error) { showProblem(problem, error); }
      release();
    } },
    h("label", { class: "check" }, enabled, "Fans may resell their tickets"),
    field("Resale closes before the start (hours)", hours),
    h("p", { class: "hint" }, `Cap ${policy.resale_cap_bps / 100}% of face value, royalty ${policy.royalty_bps / 100}% (fixed in the contract). Direct transfers ${policy.transfers_locked ? "locked" : "allowed"}.`),
    submit));
}

function scannerForm(eventId, problem) {
  const out = h("div", { "aria-live": "polite" });
  const gate = h("input", { name: "gate", required: true, value: "Main gate" });
  const label = h("input", { name: "label", required: true, value: "Phone 1" });
  const submit = h("button", { type: "submit", class: "secondary" }, "Register a scanner device");
  return h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const release = busy(submit);
    try {
      const device = await post(`/admin/events/${eventId}/scanners`, { gate: gate.value, label: label.value });
      mount(out, h("div", { class: "notice warn" },
        h("p", {}, `Device "${device.label}" at ${device.gate}. Its credential is shown once: enter it on the scanner's `, h("a", { href: "#/door" }, "door page"), "."),
        h("p", { class: "code", "data-testid": "scanner-credential" }, device.credential)));
    } catch (error) { showProblem(problem, error); }
    release();
  } }, h("h3", {}, "Scanner devices"), h("div", { class: "grid2" }, field("Gate", gate), field("Device name", label)), submit, out);
}

function cancelSection(eventId) {
  const reason = h("textarea", { name: "reason", required: true, rows: 2, maxlength: 500 });
  const problem = h("div");
  const submit = h("button", { type: "submit", class: "danger" }, "Cancel this event");
  return h("section", { class: "card", "aria-labelledby": "cancel-title" }, h("h2", { id: "cancel-title" }, "Cancel the event"),
    h("form", { onsubmit: async (e) => {
      e.preventDefault();
      if (!confirm("Cancel this event? Card buyers are refunded, ether buyers can claim on chain. This can't be undone.")) return;
      const release = busy(submit, "Cancelling…");
      try {
        const result = await post(`/events/${eventId}/cancel`, { reason: reason.value });
        mount(problem, h("p", { class: "notice ok", role: "status" }, `Cancelled: ${result.orders_cancelled} open orders cancelled, ${result.card_refunds_queued} card refunds queued, ${result.crypto_orders_claimable} ether orders claimable on chain.`));
      } catch (error) { release(); showProblem(problem, error); }
    } }, field("Reason, for ticket holders", reason), submit), problem);
}
