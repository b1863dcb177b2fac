"""Event terms for tests that create events through ChainClient directly."""

from __future__ import annotations

import hashlib

from backend.chain.client import ChainClient
from backend.chain.types import Deployment, EventTerms, TierTerms
from backend.ipfs.cid import DAG_PB, Cid

SALE_START = 1_700_000_000  # 2023: already open on any test chain
SALE_END = 4_000_000_000
EVENT_END = 4_000_086_400
FACE_PRICE_WEI = 10**17
TIER_DIGEST = hashlib.sha256(b"tier metadata").digest()
TIER_CID = Cid(0, DAG_PB, b"\x12\x20" + TIER_DIGEST).encode()
"""What tokenURI shows for tickets of ``tier_terms()``: ipfs://<TIER_CID>."""


def tier_terms(supply: int = 1_000, per_wallet_limit: int = 0) -> TierTerms:
    return TierTerms(
        price_wei=FACE_PRICE_WEI,
        supply=supply,
        per_wallet_limit=per_wallet_limit,
        metadata_digest=TIER_DIGEST,
    )


def event_terms(event_id: int, organizer: str) -> EventTerms:
    return EventTerms(
        event_id=event_id,
        name="Show",
        symbol="SHOW",
        organizer=organizer,
        sale_start=SALE_START,
        sale_end=SALE_END,
        event_end=EVENT_END,
        resale_cap_bps=11_000,
        royalty_bps=500,
        transfers_locked=False,
    )


def create_event(
    client: ChainClient, event_id: int, organizer: str, tiers: list[TierTerms] | None = None
) -> Deployment:
    return client.create_event(event_terms(event_id, organizer), tiers or [tier_terms()])
