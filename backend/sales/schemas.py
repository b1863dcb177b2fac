"""Request and response bodies of the order routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.catalog.schemas import EventOut
from backend.payments.schemas import PaymentIntentOut
from backend.problems import ProblemDetails
from backend.resale.schemas import ResaleTotalsOut
from backend.schemas import IdField


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["card", "crypto"]


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: IdField
    tier_id: IdField
    quantity: int = Field(gt=0, le=50)
    checkout: CheckoutRequest | None = Field(
        default=None,
        description="Start paying in the same request: the answer's ``checkout`` is what "
        "POST /orders/{id}/checkout returns. One round trip less for a buyer at the busiest "
        "moment of an on-sale.",
    )


class UnsignedTransactionOut(BaseModel):
    """For the wallet's eth_sendTransaction; it adds gas, fees and its nonce."""

    to: str
    data: str
    value: str = Field(description="Wei, 0x hex")
    chainId: int


class CryptoPaymentOut(BaseModel):
    typed_data: dict[str, Any] = Field(
        description="The EIP-712 purchase permit (eth_signTypedData_v4 shape); uint256 values "
        "are decimal strings"
    )
    signature: str = Field(description="fairtix's signature over the permit")
    transaction: UnsignedTransactionOut
    total_wei: str = Field(description="The exact ether to send, decimal")
    deadline: int = Field(description="Unix seconds; the permit is void after it")


class CheckoutOut(BaseModel):
    order_id: int
    status: str
    payment_intent: PaymentIntentOut | None = Field(default=None, description="card only")
    crypto: CryptoPaymentOut | None = Field(default=None, description="crypto only")


class TransitionOut(BaseModel):
    from_status: str | None
    to_status: str
    cause: str
    at: datetime


class RefundClaimOut(BaseModel):
    """A crypto ticket whose refund is still to be claimed from the contract's escrow."""

    token_id: int
    holder: str = Field(
        description="Its last known holder: only the wallet holding it can claim (and is paid)"
    )
    amount_wei: str = Field(description="What claiming pays back, decimal")
    transaction: UnsignedTransactionOut = Field(
        description="claimRefund(tokenId), for the holder's wallet to send"
    )


class RefundOut(BaseModel):
    state: Literal["none", "pending", "refunded", "claimable_on_chain", "claimed"] = Field(
        description="none: no money to give back. Card: pending (queued with the provider), "
        "refunded (the provider confirmed). Crypto: pending (the event's cancellation is not "
        "confirmed on chain yet), claimable_on_chain (each ticket's holder claims with "
        "claimRefund), claimed (every ticket was claimed)"
    )
    method: Literal["card", "crypto"] | None = None
    reason: str | None = None
    requested_at: datetime | None = Field(
        default=None, description="Card: when the refund was queued; crypto: claimable since"
    )
    refunded_at: datetime | None = None
    tickets: int = Field(default=0, description="Tickets whose money can come back")
    claimed_token_ids: list[int] = Field(default_factory=list)
    claims: list[RefundClaimOut] = Field(default_factory=list)
    resold_token_ids: list[int] = Field(
        default_factory=list,
        description="Card, cancelled event: tickets of the order that someone else held when "
        "the cancellation was mined; their face value goes to that holder, not to this card",
    )


class DisputeOut(BaseModel):
    status: str = Field(
        description="The dispute's status at the card provider: needs_response, under_review, "
        "won, lost, ... (Stripe's dispute statuses)"
    )
    reason: str = Field(description="The reason the cardholder gave, e.g. fraudulent")
    disputed_at: datetime = Field(description="When fairtix first heard of the dispute")


class OrderOut(BaseModel):
    id: int
    event_id: int
    tier_id: int
    buyer_address: str
    quantity: int
    unit_price_cents: int
    total_cents: int
    currency: str
    status: str
    hold_expires_at: datetime | None
    payment_intent_id: str | None
    mint_tx_hash: str | None
    token_ids: list[int]
    failure_reason: str | None
    created_at: datetime
    transitions: list[TransitionOut]
    refund: RefundOut
    dispute: DisputeOut | None = Field(
        default=None,
        description="A chargeback the card's holder opened with their bank; the tickets stay "
        "valid, the organizer is told (order.disputed)",
    )
    checkout: CheckoutOut | None = Field(
        default=None,
        description="POST /orders with ``checkout`` only: the payment started with the hold",
    )
    checkout_problem: ProblemDetails | None = Field(
        default=None,
        description="POST /orders with ``checkout`` only: why the payment could not start "
        "(the provider is down, say). The seats are held all the same: start paying with "
        "POST /orders/{id}/checkout.",
    )


class TierSalesOut(BaseModel):
    tier_id: int
    name: str
    supply: int
    reserved: int = Field(description="Seats held by open orders or sold: no longer on sale")
    tickets_sold: int = Field(description="Tickets of paid orders (being) issued")
    gross_cents: int = Field(description="What those tickets' buyers paid, before refunds")
    currency: str


class SalesReportOut(BaseModel):
    event_id: int
    tiers: list[TierSalesOut]
    tickets_sold: int
    orders_by_status: dict[str, int] = Field(description="Every order of the event, by status")
    refunds_pending: int = Field(description="Card refunds queued, not yet confirmed")
    refunds_done: int = Field(
        description="Card refunds done: confirmed by the provider, or paid by the card's bank "
        "through a chargeback it decided for the buyer"
    )
    refunds_held_for_disputes: int = Field(
        description="Card refunds owed (a cancellation) on payments under a chargeback the bank "
        "has not decided: won, the refund goes out; lost, the bank has refunded the buyer"
    )
    disputes_by_status: dict[str, int] = Field(
        description="Chargebacks by their status at the card provider (needs_response, won, "
        "lost, ...)"
    )
    resale: ResaleTotalsOut = Field(
        description="Resales of the event's tickets on the market, and the royalties earned"
    )


class EventOrdersOut(BaseModel):
    orders: list[OrderOut]
    next_after_id: int | None = Field(
        description="Pass as after_id for the next page; null on the last one"
    )


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_before_id: int | None = Field(
        description="Pass as before_id for the next (older) page; null on the last one"
    )


class EventCancelOut(BaseModel):
    event: EventOut
    orders_cancelled: int = Field(description="Open orders cancelled, their seats released")
    card_refunds_queued: int = Field(description="Paid card orders whose refund was queued")
    crypto_orders_claimable: int = Field(
        description="Crypto orders whose tickets' holders can claim refunds on chain once the "
        "contract is cancelled (event.cancellation.on_chain)"
    )
    card_orders_following_tickets: int = Field(
        default=0,
        description="Paid card orders with a ticket that changed hands (or is still listed): "
        "each ticket's face value goes to whoever holds it when the cancellation is mined, "
        "never to a previous holder",
    )
