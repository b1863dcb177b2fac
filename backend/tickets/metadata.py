"""Ticket metadata JSON (ERC-721 metadata shape). Event facts only: never buyer data."""

from __future__ import annotations

import json
from typing import Any

from backend.catalog.models import Event, Tier


def seat_label_text(tier_name: str, seat_number: int) -> str:
    return f"{tier_name} {seat_number}"


def tier_metadata(event: Event, tier: Tier) -> dict[str, Any]:
    """What every ticket of ``tier`` points at on chain (tokenURI): the contract stores one
    metadata digest per tier, so seat labels live off chain (GET /me/tickets)."""
    return {
        "name": f"{event.name} - {tier.name}",
        "description": event.description or f"Ticket for {event.name}",
        "image": f"ipfs://{event.image_cid}",
        "attributes": [
            {"trait_type": "Event", "value": event.name},
            {"trait_type": "Event ID", "value": event.id},
            {"trait_type": "Venue", "value": event.venue},
            {"trait_type": "Tier", "value": tier.name},
            {
                "display_type": "date",
                "trait_type": "Starts",
                "value": int(event.starts_at.timestamp()),
            },
        ],
    }


def encode(metadata: dict[str, Any]) -> bytes:
    # Canonical bytes: a retried mint must produce exactly the same CID for the same ticket.
    return json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
