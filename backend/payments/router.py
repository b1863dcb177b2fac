"""HTTP routes: provider webhooks, PayPal capture, and the sandbox processor's card confirmation."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep
from backend.observability import instruments
from backend.payments.errors import (
    CardRejected,
    PaymentDeclined,
    PaymentIntentNotFound,
    PaymentNotApproved,
    ProviderRejected,
    ProviderUnavailable,
    WebhookRejected,
)
from backend.payments.paypal import CaptureResult, PayPalProvider
from backend.payments.provider import EventSource, PaymentEvent, PaymentProvider
from backend.payments.sandbox import SandboxProvider
from backend.payments.schemas import CaptureOut, SandboxConfirmIn, SandboxIntentOut, WebhookAck
from backend.payments.webhooks import (
    CAPTURABLE,
    already_processed,
    apply_capture,
    handle_payment_event,
)
from backend.problems import Problem, problem_responses, register_problem
from backend.resale import cards as resale_cards
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.sales.errors import OrderNotPayable
from backend.schemas import IdPath

router = APIRouter(
    tags=["payments"], responses=problem_responses(400, 402, 404, 409, 422, 502, 503)
)

register_problem(WebhookRejected, 400, "webhook-rejected", "Webhook rejected")
register_problem(PaymentIntentNotFound, 404, "payment-intent-not-found", "Payment intent not found")
register_problem(CardRejected, 402, "card-rejected", "Card can't be charged")
register_problem(PaymentNotApproved, 409, "payment-not-approved", "Payment not approved yet")
register_problem(PaymentDeclined, 402, "payment-declined", "Payment declined")
register_problem(ProviderUnavailable, 503, "payment-provider-unavailable", "Payment provider down")
register_problem(ProviderRejected, 502, "payment-provider-error", "Payment provider error")

MAX_WEBHOOK_BYTES = 256 * 1024


def _provider_for(runtime: Runtime, source: EventSource) -> PaymentProvider:
    provider = runtime.cards
    if provider.event_source != source:
        raise Problem(
            404, "not-found", "Not found", f"{source} is not the configured payment provider"
        )
    return provider


_T = TypeVar("_T")
# Threads for applying payment webhooks, apart from the pool the buyers' requests share: money
# that arrived is not queued behind an on-sale's new orders, and the fans who paid get their
# tickets while the sale is still busy. One limiter per event loop (tests run several).
PAYMENT_THREADS = 4
_payment_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


async def _run_payment_work(work: Callable[[], _T]) -> _T:
    loop = asyncio.get_running_loop()
    limiter = _payment_limiters.get(loop)
    if limiter is None:
        limiter = _payment_limiters[loop] = anyio.CapacityLimiter(PAYMENT_THREADS)
    return await anyio.to_thread.run_sync(work, limiter=limiter)


def _observe_lag(provider: str, event: PaymentEvent) -> None:
    """How long after the provider's event its (verified) webhook arrived: retries and a
    provider's own backlog show here first."""
    if event.created is not None:
        lag = max(time.time() - event.created, 0.0)
        instruments.PAYMENT_WEBHOOK_LAG.labels(provider).observe(lag)


async def _read_body(request: Request) -> bytes:
    payload = await request.body()
    if len(payload) > MAX_WEBHOOK_BYTES:
        raise WebhookRejected("the body is too large")
    return payload


@router.post("/payments/stripe/webhook", response_model=WebhookAck)
async def stripe_webhook(request: Request, runtime: RuntimeDep) -> WebhookAck:
    """Stripe-format events (Stripe, or the sandbox), signed. Verified with the stripe library
    (signature and timestamp tolerance); replays change nothing."""
    provider = _provider_for(runtime, "stripe")
    event = provider.verify_webhook(await _read_body(request), request.headers)
    _observe_lag(provider.name, event)

    def apply() -> WebhookAck:
        with transaction(runtime.sessions) as session:
            outcome = handle_payment_event(session, provider.name, "stripe", event)
        return WebhookAck(outcome=outcome)

    return await _run_payment_work(apply)


@router.post("/payments/paypal/webhook", response_model=WebhookAck)
async def paypal_webhook(request: Request, runtime: RuntimeDep) -> WebhookAck:
    """PayPal webhook events, verified through PayPal's verify-webhook-signature API. An approved
    order is captured here; a capture completed, denied or refunded updates the order. Replays,
    forgeries and stale transmissions change nothing. If PayPal can't be reached this answers
    503 and PayPal delivers the event again later."""
    provider = _provider_for(runtime, "paypal")
    payload = await _read_body(request)
    event = await run_in_threadpool(provider.verify_webhook, payload, request.headers)
    _observe_lag(provider.name, event)

    def apply() -> WebhookAck:
        capture: CaptureResult | None = None
        found = event
        if event.kind == "disputed" and event.transaction_id is not None:
            # PayPal names the disputed capture; its order is asked of PayPal (outside any
            # transaction). A capture it doesn't know leaves the event unmatched: ignored.
            assert isinstance(provider, PayPalProvider)
            order_id = provider.order_of_capture(event.transaction_id)
            found = replace(event, payment_id=order_id)
        if event.kind == "approved" and event.payment_id is not None:
            assert isinstance(provider, PayPalProvider)
            with transaction(runtime.sessions) as session:
                if already_processed(session, "paypal", event.id):
                    return WebhookAck(outcome="duplicate")
            try:
                capture = _capture(runtime, provider, event.payment_id)
            except PaymentNotApproved:
                capture = None
        with transaction(runtime.sessions) as session:
            outcome = handle_payment_event(session, provider.name, "paypal", found, capture)
        return WebhookAck(outcome=outcome)

    return await _run_payment_work(apply)


def _capture(runtime: Runtime, provider: PayPalProvider, payment_id: str) -> CaptureResult | None:
    """Capture a known, still payable PayPal order (outside any transaction: it is a call to
    another system). The request id is the order's, so every path that captures it (buyer,
    webhook, their retries) gets PayPal's one capture back."""
    with transaction(runtime.sessions) as session:
        order = sales.order_for_intent(session, provider.name, payment_id)
        if order is None:
            # A card buyer's resale purchase: captured under its own key, while still payable.
            purchase = resale_cards.purchase_for_intent(session, provider.name, payment_id)
            if purchase is None or not resale_cards.capturable(purchase):
                return None
            key = f"fairtix-resale-capture-{purchase.id}"
        elif order.status not in CAPTURABLE:
            return None
        else:
            key = f"fairtix-capture-{order.id}"
    return provider.capture(payment_id, idempotency_key=key)


@router.post(
    "/payments/paypal/orders/{order_id}/capture",
    response_model=CaptureOut,
    responses=problem_responses(401, 403),
)
def paypal_capture(order_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> CaptureOut:
    """After the buyer approved at PayPal (the checkout's approve_url): take the money. Safe to
    repeat; a paid order answers with its status. A declined funding source answers 402: the
    buyer may approve again with another one."""
    provider = _provider_for(runtime, "paypal")
    assert isinstance(provider, PayPalProvider)
    with transaction(runtime.sessions) as session:
        order = sales.get_order(session, order_id, principal.address)
        if order.payment_provider != provider.name or order.payment_intent_id is None:
            raise Problem(
                409,
                "checkout-not-started",
                "Checkout not started",
                f"order {order_id} has no PayPal payment; start checkout first",
            )
        if order.status in (sales.PAID, sales.MINTING, sales.FULFILLED):
            return CaptureOut(order_id=order.id, status=order.status, payment_status="COMPLETED")
        if order.status not in CAPTURABLE:
            raise OrderNotPayable(order.id, order.status)
        payment_id = order.payment_intent_id
    capture = _capture(runtime, provider, payment_id)
    if capture is None:  # the order moved on (cancelled, expired and swept) meanwhile
        with transaction(runtime.sessions) as session:
            raise OrderNotPayable(order_id, sales.get_order(session, order_id).status)
    with transaction(runtime.sessions) as session:
        applied = apply_capture(session, provider.name, capture)
        status = applied.status if applied is not None else "unknown"
    if capture.status in ("DECLINED", "FAILED"):
        raise PaymentDeclined(payment_id, capture.reason or capture.status)
    return CaptureOut(order_id=order_id, status=status, payment_status=capture.status)


@router.post(
    "/sandbox/payment_intents/{intent_id}/confirm",
    response_model=SandboxIntentOut,
    tags=["sandbox"],
)
async def sandbox_confirm(
    intent_id: str, body: SandboxConfirmIn, runtime: RuntimeDep
) -> SandboxIntentOut:
    """Sandbox only: pay with a Stripe test card (4242 4242 4242 4242 succeeds,
    4000 0000 0000 0002 is declined). The outcome reaches the shop by signed webhook."""
    cards = runtime.cards
    if not isinstance(cards, SandboxProvider):
        raise Problem(404, "not-found", "Not found", "the sandbox processor is not enabled")
    intent = await run_in_threadpool(cards.confirm, intent_id, body.client_secret, body.card_number)
    return SandboxIntentOut(
        id=intent.id, status=intent.status, amount=intent.amount, currency=intent.currency
    )
