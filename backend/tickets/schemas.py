"""Response bodies of the ticket routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class TicketList(BaseModel):
    address: str
    tickets: list[TicketOut]
