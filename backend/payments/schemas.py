"""Request and response bodies of the payment routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.payments.provider import PaymentSession


class WebhookAck(BaseModel):
    received: bool = True
    outcome: Literal["processed", "duplicate", "ignored"]


class SandboxConfirmIn(BaseModel):
    """What a card form sends (Stripe.js's confirmCardPayment, reduced to the sandbox's needs)."""

    model_config = ConfigDict(extra="forbid")

    client_secret: str = Field(min_length=1, max_length=200)
    card_number: str = Field(min_length=12, max_length=23, pattern=r"^[0-9 \-]+$")
    exp_month: int = Field(default=12, ge=1, le=12)
    exp_year: int = Field(default=2034, ge=2000, le=2100)
    cvc: str = Field(default="123", pattern=r"^[0-9]{3,4}$")


class SandboxIntentOut(BaseModel):
    id: str
    status: str
    amount: int
    currency: str


class CaptureOut(BaseModel):
    """The order after capturing its approved PayPal payment."""

    order_id: int
    status: str = Field(description="The order's status: paid once the capture completed")
    payment_status: str = Field(description="PayPal's capture status: COMPLETED or PENDING")


class PaymentIntentOut(BaseModel):
    provider: str
    id: str
    client_secret: str | None = Field(
        default=None, description="Card form secret (sandbox, Stripe); none for PayPal"
    )
    amount: int
    currency: str
    status: str
    confirm_url: str | None = Field(
        default=None, description="Sandbox only: where a client confirms the card payment"
    )
    approve_url: str | None = Field(
        default=None, description="PayPal only: where the buyer approves the payment at PayPal"
    )


def payment_intent_out(
    provider: str, intent: PaymentSession, public_base_url: str
) -> PaymentIntentOut:
    """The card payment a checkout answers (a primary order's, or a card resale purchase's)."""
    confirm_url = None
    if provider == "sandbox":
        confirm_url = f"{public_base_url}/sandbox/payment_intents/{intent.id}/confirm"
    return PaymentIntentOut(
        provider=provider,
        id=intent.id,
        client_secret=intent.client_secret,
        amount=intent.amount,
        currency=intent.currency,
        status=intent.status,
        confirm_url=confirm_url,
        approve_url=intent.approve_url,
    )
