"""Request and response bodies of the resale routes. Wei amounts are decimal strings (they pass
JavaScript's 2**53); token ids are integers, as on the ticket and order routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.payments.schemas import PaymentIntentOut
from backend.schemas import MAX_ID, IdField

MAX_TOKEN_ID = MAX_ID * 256 + 255
"""Token ids are order id * 256 + index, and order ids are bounded like every row id."""
MAX_DEADLINE = 2**40 - 1
"""Unix seconds, as the contract keeps its schedule (uint40)."""
MAX_CLOSES_BEFORE = 30 * 86_400

WeiString = Annotated[
    str,
    Field(
        pattern=r"^[1-9][0-9]{0,29}$",
        description="Wei, decimal; a whole number of gwei (face prices are too)",
        examples=["75000000000000000"],
    ),
]
TokenId = Annotated[int, Field(ge=0, le=MAX_TOKEN_ID)]
PayoutRail = Literal["ether", "card"]
AddressField = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{40}$", examples=["0x" + "ab" * 20])]
_PAYOUT_DESCRIPTION = (
    "How you are paid: ether (credited on chain, withdraw it) or card (back to the card that "
    "bought the ticket: only for a ticket you bought by card, and never more than that card "
    "paid for it; the order then names fairtix's treasury as payee)"
)
_BUYER_DESCRIPTION = (
    "A private sale: the only wallet that may buy (the signed order names it). Omit for the "
    "open market"
)
ListingStatus = Literal["live", "reserved", "sold", "void", "expired", "delisted"]


class SellOrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: IdField
    token_id: TokenId
    price_wei: WeiString
    deadline: int | None = Field(
        default=None,
        ge=1,
        le=MAX_DEADLINE,
        description="Unix seconds the order stays fillable; default: 30 days, or the resale "
        "window's close if sooner. Never after the window closes.",
    )
    payout: PayoutRail = Field(default="ether", description=_PAYOUT_DESCRIPTION)
    buyer: AddressField | None = Field(default=None, description=_BUYER_DESCRIPTION)


class ListingCreate(BaseModel):
    """The sell order as signed (its typed data from POST /listings/sell-order) and the
    holder's signature over it."""

    model_config = ConfigDict(extra="forbid")

    event_id: IdField
    token_id: TokenId
    price_wei: WeiString
    nonce: int = Field(ge=0, lt=2**24, description="The ticket's sale nonce the order carries")
    deadline: int = Field(ge=1, le=MAX_DEADLINE, description="Unix seconds")
    signature: str = Field(
        pattern=r"^0x[0-9a-fA-F]{130}$", description="65-byte EIP-712 signature, 0x hex"
    )
    payout: PayoutRail = Field(
        default="ether", description=_PAYOUT_DESCRIPTION + "; as in the sell order you signed"
    )
    buyer: AddressField | None = Field(
        default=None, description=_BUYER_DESCRIPTION + "; as in the sell order you signed"
    )


class UnsignedTransactionOut(BaseModel):
    """For the wallet's eth_sendTransaction; it adds gas, fees and its nonce."""

    to: str
    data: str
    value: str = Field(description="Wei, 0x hex")
    chainId: int


class ListingOut(BaseModel):
    id: int | None = Field(description="null on a sell order not listed yet")
    event_id: int
    chain_id: int
    contract_address: str
    tier_id: int
    tier_name: str
    seat: str
    token_id: int
    seller_address: str
    face_price_wei: str = Field(description="The tier's face price, decimal wei")
    price_wei: str = Field(description="What the buyer pays, decimal wei")
    cap_wei: str = Field(description="The most this ticket may be resold for: face x cap")
    resale_cap_bps: int
    royalty_bps: int
    royalty_wei: str = Field(description="The organizer's share of the price")
    seller_receives_wei: str = Field(description="Price minus royalty, credited on chain")
    price_cents: int | None = Field(
        description="The price in fiat minor units for card buyers (FAIRTIX_WEI_PER_CENT, "
        "rounded up); null without a rate"
    )
    currency: str
    deadline: int = Field(description="Unix seconds the signed order is fillable until")
    expires_at: datetime
    status: ListingStatus = Field(
        description="live: on the market; sold; void (the ticket moved, was used or refunded, "
        "its orders were cancelled, the event was cancelled or resale turned off); expired; "
        "delisted (by its seller; the signed order stays fillable on chain until its nonce "
        "moves or its deadline passes); reserved: held for a card buyer"
    )
    status_reason: str | None = None
    created_at: datetime | None = None
    buyer_address: str | None = Field(default=None, description="sold only")
    sold_tx_hash: str | None = Field(default=None, description="sold only")
    payout: PayoutRail = Field(description="How its seller is paid")
    payee_address: str | None = Field(
        description="Card payout: fairtix's treasury, which the order pays and which refunds "
        "the seller's card; null: the seller, credited on chain"
    )
    payout_cents: int | None = Field(
        default=None, description="Card payout: what goes back to the seller's card, minor units"
    )
    named_buyer: str | None = Field(description="A private sale's only buyer; null: anyone")
    reserved_until: datetime | None = Field(
        default=None,
        description="reserved: until when a card buyer's payment window holds it (null once "
        "paid: held until the relayer's settlement is decided)",
    )


class SellOrderOut(BaseModel):
    typed_data: dict[str, Any] = Field(
        description="The EIP-712 SellOrder to sign (eth_signTypedData_v4's argument: types, "
        "primaryType, domain, message); uint256 values are decimal strings"
    )
    listing: ListingOut = Field(description="What the ticket would list as")


class ListingPage(BaseModel):
    listings: list[ListingOut]
    next_cursor: str | None = Field(
        description="Pass as cursor (with the same sort) for the next page; null on the last"
    )


class DelistOut(BaseModel):
    listing: ListingOut
    cancel_transaction: UnsignedTransactionOut = Field(
        description="cancelSellOrders(tokenId), for the seller's wallet. Until it is mined the "
        "signed order stays fillable on chain by anyone who has it (or until its deadline)"
    )
    note: str


class BuyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["crypto", "card"] = Field(
        description="crypto: the buyResale transaction for your wallet; card: a reservation "
        "and a card payment, and fairtix settles the sale on chain for your wallet"
    )


class CardPurchaseOut(BaseModel):
    id: int
    listing_id: int
    token_id: int
    buyer_address: str = Field(description="The wallet the ticket goes to")
    amount_cents: int
    currency: str
    status: Literal["reserved", "paid", "settling", "settled", "failed", "refunded", "expired"]
    reserved_until: datetime = Field(description="Pay before this, or the reservation lapses")
    settle_tx_hash: str | None = None
    failure_reason: str | None = None
    created_at: datetime
    paid_at: datetime | None = None
    settled_at: datetime | None = None
    refunded_at: datetime | None = None


class BuyOut(BaseModel):
    listing: ListingOut
    transaction: UnsignedTransactionOut | None = Field(
        default=None,
        description="crypto: buyResale(order, signature) paying exactly the price; the sale is "
        "recorded when the indexer sees it on chain",
    )
    total_wei: str | None = Field(
        default=None, description="crypto: the exact ether to send, decimal"
    )
    purchase: CardPurchaseOut | None = Field(
        default=None, description="card: the purchase holding the listing for you"
    )
    payment_intent: PaymentIntentOut | None = Field(
        default=None,
        description="card: what the primary checkout answers for a card payment (client secret "
        "for the card form, or PayPal's approve_url), in the event's currency",
    )


class PayoutOut(BaseModel):
    id: int
    listing_id: int
    event_id: int
    token_id: int
    rail: PayoutRail
    amount_wei: str = Field(description="The seller's proceeds: price - royalty, decimal wei")
    amount_cents: int | None = Field(description="card: what goes back to your card")
    currency: str | None
    status: Literal["credited", "pending", "paid", "failed", "reverted", "reverted_after_paid"] = (
        Field(
            description="ether: credited (withdraw it from the event's contract); card: pending, "
            "paid or failed; reverted: a chain reorganisation undid the sale"
        )
    )
    sold_tx_hash: str
    created_at: datetime
    paid_at: datetime | None


class PayoutPage(BaseModel):
    payouts: list[PayoutOut]
    next_cursor: str | None


class ResalePolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="Whether holders may list and buyers buy here")
    closes_before_seconds: int = Field(
        ge=0,
        le=MAX_CLOSES_BEFORE,
        description="Listing and buying close this long before the event starts",
    )


class ResalePolicyOut(BaseModel):
    event_id: int
    enabled: bool
    closes_before_seconds: int
    closes_at: datetime = Field(description="When listing and buying close")
    open: bool = Field(description="Whether a ticket can be listed now")
    resale_cap_bps: int
    royalty_bps: int
    transfers_locked: bool = Field(
        description="Direct transfers refused on chain: tickets move only through capped "
        "resale (see docs/resale.md)"
    )


class ResaleTotalsOut(BaseModel):
    resales: int = Field(description="Listings sold on chain")
    volume_wei: str = Field(description="What their buyers paid, decimal wei")
    royalties_wei: str = Field(description="The organizer's royalties on them, decimal wei")
    on_market: int = Field(description="Listings live now")
