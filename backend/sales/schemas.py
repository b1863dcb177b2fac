"""Request and response bodies of the order routes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.schemas import IdField


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: IdField
    tier_id: IdField
    quantity: int = Field(gt=0, le=50)


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["card"]


class PaymentIntentOut(BaseModel):
    provider: str
    id: str
    client_secret: str
    amount: int
    currency: str
    status: str
    confirm_url: str | None = Field(
        default=None, description="Sandbox only: where a client confirms the card payment"
    )


class CheckoutOut(BaseModel):
    order_id: int
    status: str
    payment_intent: PaymentIntentOut


class TransitionOut(BaseModel):
    from_status: str | None
    to_status: str
    cause: str
    at: datetime


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
