"""HTTP routes: the Stripe-format webhook, and the sandbox processor's card confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from backend.db.engine import transaction
from backend.deps import RuntimeDep
from backend.payments.errors import (
    CardRejected,
    PaymentIntentNotFound,
    ProviderUnavailable,
    WebhookRejected,
)
from backend.payments.sandbox import SandboxProvider
from backend.payments.schemas import SandboxConfirmIn, SandboxIntentOut, WebhookAck
from backend.payments.webhooks import handle_card_event
from backend.problems import Problem, problem_responses, register_problem

router = APIRouter(tags=["payments"], responses=problem_responses(400, 402, 404, 422))

register_problem(WebhookRejected, 400, "webhook-rejected", "Webhook rejected")
register_problem(PaymentIntentNotFound, 404, "payment-intent-not-found", "Payment intent not found")
register_problem(CardRejected, 402, "card-rejected", "Card can't be charged")
register_problem(ProviderUnavailable, 503, "payment-provider-unavailable", "Payment provider down")

MAX_WEBHOOK_BYTES = 256 * 1024


@router.post("/payments/stripe/webhook", response_model=WebhookAck)
async def stripe_webhook(
    request: Request,
    runtime: RuntimeDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> WebhookAck:
    """Stripe-format events, signed. Verified with the stripe library; replays change nothing."""
    payload = await request.body()
    if len(payload) > MAX_WEBHOOK_BYTES:
        raise WebhookRejected("the body is too large")
    event = runtime.cards.verify_webhook(payload, stripe_signature)

    def apply() -> WebhookAck:
        with transaction(runtime.sessions) as session:
            return WebhookAck(outcome=handle_card_event(session, runtime.cards.name, event))

    return await run_in_threadpool(apply)


@router.post(
    "/sandbox/payment_intents/{intent_id}/confirm",
    response_model=SandboxIntentOut,
    tags=["sandbox"],
)
def sandbox_confirm(
    intent_id: str, body: SandboxConfirmIn, runtime: RuntimeDep
) -> SandboxIntentOut:
    """Sandbox only: pay with a Stripe test card (4242 4242 4242 4242 succeeds,
    4000 0000 0000 0002 is declined). The outcome reaches the shop by signed webhook."""
    cards = runtime.cards
    if not isinstance(cards, SandboxProvider):
        raise Problem(404, "not-found", "Not found", "the sandbox processor is not enabled")
    intent = cards.confirm(intent_id, body.client_secret, body.card_number)
    return SandboxIntentOut(
        id=intent.id, status=intent.status, amount=intent.amount, currency=intent.currency
    )
