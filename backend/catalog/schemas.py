"""Request and response bodies of the catalog routes."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TierCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(ge=0, le=100_000_000, description="Face price in minor units")
    supply: int = Field(gt=0, le=1_000_000)
    price_wei: int | None = Field(
        default=None,
        ge=0,
        lt=2**72,
        multiple_of=10**9,
        description="Face price on chain (crypto checkout, resale cap), a whole number of gwei; "
        "default: price_cents at FAIRTIX_WEI_PER_CENT",
    )
    per_wallet_limit: int = Field(
        default=0, ge=0, le=255, description="Most tickets one wallet may buy (0: no limit)"
    )


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
    queue_opens_at: AwareDatetime | None = Field(
        default=None, description="When the waiting room takes places; default: at once"
    )
    admissions_per_minute: int | None = Field(default=None, gt=0, le=1_000_000)
    max_tickets_per_order: int | None = Field(default=None, gt=0, le=50)
    ends_at: AwareDatetime | None = Field(
        default=None,
        description="End of the event: resale closes, escrow can be settled; default: "
        "starts_at + FAIRTIX_DEFAULT_EVENT_HOURS",
    )
    resale_cap_bps: int | None = Field(
        default=None, ge=0, le=65_535, description="Resale cap in basis points of face price"
    )
    royalty_bps: int | None = Field(
        default=None, ge=0, le=10_000, description="Organizer royalty on resales, basis points"
    )
    transfers_locked: bool = Field(
        default=True,
        description="Tickets move only through capped resale, never directly (the default: a "
        "direct transfer with a side payment would dodge the cap and the royalty)",
    )
    resale_enabled: bool = Field(
        default=True, description="Holders may list their tickets on the resale market"
    )
    resale_closes_before_seconds: int = Field(
        default=0,
        ge=0,
        le=30 * 86_400,
        description="Resale listing and buying close this long before starts_at",
    )
    tiers: list[TierCreate] = Field(min_length=1, max_length=16)


class EventCancel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why, in words for the ticket holders (it is sent in webhooks)",
    )


class CancellationOut(BaseModel):
    cancelled_at: datetime
    reason: str
    cancelled_by: str
    on_chain: bool = Field(
        description="Whether the contract is cancelled (crypto buyers can claim refunds then)"
    )
    tx_hash: str | None = Field(default=None, description="The cancelEvent transaction")


class TierOut(BaseModel):
    id: int
    name: str
    price_cents: int
    currency: str
    supply: int
    price_wei: int
    per_wallet_limit: int
    metadata_uri: str


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
    queue_opens_at: datetime | None = None
    admissions_per_minute: int | None = None
    ends_at: datetime
    resale_cap_bps: int
    royalty_bps: int
    transfers_locked: bool
    resale_enabled: bool = True
    resale_closes_before_seconds: int = 0
    tiers: list[TierOut]
    cancelled: bool = False
    cancellation: CancellationOut | None = Field(
        default=None, description="When, why and by whom, once the event is cancelled"
    )


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
