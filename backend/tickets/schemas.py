"""Response bodies of the ticket routes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TicketRefundOut(BaseModel):
    """What a cancelled event's ticket brings back to the wallet that holds it."""

    method: Literal["card", "ether", "claim_on_chain"] = Field(
        description="card: to the card that bought it (its primary buyer's, or a card resale "
        "buyer's); ether: sent from fairtix's treasury to this wallet (the holder paid in ether "
        "or was given the ticket); claim_on_chain: the holder sends claimRefund (GET "
        "/orders/{id} of the primary order has the transaction)"
    )
    state: Literal["pending", "claimable_on_chain", "refunded", "failed"]
    amount_cents: int | None = None
    currency: str | None = None
    amount_wei: str | None = Field(default=None, description="Decimal wei")
    tx_hash: str | None = Field(default=None, description="ether: the treasury's transfer")


class TicketOut(BaseModel):
    event_id: int
    event_name: str
    chain_id: int
    contract_address: str
    token_id: int
    order_id: int
    seat: str
    tx_hash: str
    metadata_uri: str = Field(description="ipfs://<cid>, the token's tokenURI")
    metadata_url: str = Field(description="The same content over HTTP from this service")
    event_cancelled: bool = Field(
        default=False,
        description="The event was cancelled: the ticket is no longer valid for entry, resale "
        "or transfer; its order shows the refund",
    )
    refunds: list[TicketRefundOut] = Field(
        default_factory=list,
        description="Cancelled event: the face value going back to this ticket's holder (you), "
        "decided or as it will be once the cancellation is mined; empty while the event stands",
    )


class TicketList(BaseModel):
    address: str
    tickets: list[TicketOut]
