"""Request and response bodies of the catalog routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(ge=0, le=100_000_000, description="Face price in minor units")
    supply: int = Field(gt=0, le=1_000_000)


class EventCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    symbol: str | None = Field(default=None, pattern=r"^[A-Z0-9]{1,11}$")
    description: str = Field(default="", max_length=5000)
    venue: str = Field(default="", max_length=200)
    starts_at: AwareDatetime
    sale_opens_at: AwareDatetime
    max_admitted: int | None = Field(default=None, gt=0, le=100_000)
    admission_ttl_seconds: int | None = Field(default=None, ge=60, le=3600)
    max_tickets_per_order: int | None = Field(default=None, gt=0, le=50)
    tiers: list[TierCreate] = Field(min_length=1, max_length=50)


class TierOut(BaseModel):
    id: int
    name: str
    price_cents: int
    currency: str
    supply: int


class EventOut(BaseModel):
    id: int
    name: str
    symbol: str
    description: str
    venue: str
    starts_at: datetime
    sale_opens_at: datetime
    organizer_address: str
    chain_id: int
    chain_event_id: int = Field(description="The id TicketFactory records this event under")
    contract_address: str
    deploy_tx_hash: str
    image_uri: str
    max_admitted: int
    admission_ttl_seconds: int
    max_tickets_per_order: int
    tiers: list[TierOut]


class TierAvailability(BaseModel):
    tier_id: int
    name: str
    price_cents: int
    currency: str
    supply: int
    remaining: int
    sold_out: bool


class Availability(BaseModel):
    event_id: int
    on_sale: bool
    sold_out: bool
    tiers: list[TierAvailability]
