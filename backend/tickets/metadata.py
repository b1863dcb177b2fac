"""Ticket metadata JSON (ERC-721 metadata shape). Event facts only: never buyer data."""

from __future__ import annotations

import json
from typing import Any

from backend.catalog.models import Event, Tier


def seat_label_text(tier_name: str, seat_number: int) -> str:
    return f"{tier_name} {seat_number}"


def seat_label(tier: Tier, seat_number: int) -> str:
    return seat_label_text(tier.name, seat_number)


def ticket_metadata(event: Event, tier: Tier, seat_number: int) -> dict[str, Any]:
    seat = seat_label(tier, seat_number)
    return {
        "name": f"{event.name} - {seat}",
        "description": event.description or f"Ticket for {event.name}",
        "image": f"ipfs://{event.image_cid}",
        "attributes": [
            {"trait_type": "Event", "value": event.name},
            {"trait_type": "Event ID", "value": event.id},
            {"trait_type": "Venue", "value": event.venue},
            {"trait_type": "Tier", "value": tier.name},
            {"trait_type": "Seat", "value": seat},
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
