"""What fairtix keeps about a wallet, read out whole (the export), and what erasing removes.

The export is every off-chain row tied to the wallet's address, table by table, column by
column, so nothing is left out because a view was not written for it; only secrets are left
out (session token hashes, signed transactions, payment client secrets). Erasing deletes what
is personal and not needed to honour a payment or a ticket: the contact e-mail. Orders,
tickets, listings, payouts and refunds are kept: they are the record of money taken and owed
and of tokens on a public chain, which carry the same address anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import AuthSession, RoleGrant
from backend.door.models import DoorAdmission
from backend.notify import service as notify
from backend.notify.models import ContactEmail, WebhookEndpoint
from backend.resale.models import CardPurchase, Listing, Payout
from backend.sales.models import HolderRefund, Order
from backend.tickets.models import Ticket

# (section, model, the column holding the wallet's address)
SECTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("contact", ContactEmail, ContactEmail.address),
    ("sign_in_sessions", AuthSession, AuthSession.address),
    ("roles", RoleGrant, RoleGrant.address),
    ("orders", Order, Order.buyer_address),
    ("tickets_held", Ticket, Ticket.owner_address),
    ("listings", Listing, Listing.seller_address),
    ("card_resale_purchases", CardPurchase, CardPurchase.buyer_address),
    ("resale_payouts", Payout, Payout.seller_address),
    ("cancellation_refunds", HolderRefund, HolderRefund.holder_address),
    ("door_admissions", DoorAdmission, DoorAdmission.holder),
    ("webhook_endpoints", WebhookEndpoint, WebhookEndpoint.owner_address),
)
SECRET_COLUMNS = frozenset(
    {"token_hash", "raw_tx", "settle_raw_tx", "client_secret", "secret_salt", "signature_key"}
)
ROWS_PER_SECTION = 10_000
"""A bound on one answer; a wallet with more (an organizer's whole history) is told so."""


def export(session: Session, wallet: str) -> dict[str, Any]:
    address = wallet.lower()
    sections: dict[str, list[dict[str, Any]]] = {}
    truncated = []
    for name, model, column in SECTIONS:
        rows = session.scalars(
            select(model).where(column == address).limit(ROWS_PER_SECTION + 1)
        ).all()
        if len(rows) > ROWS_PER_SECTION:
            truncated.append(name)
        sections[name] = [_row(row) for row in rows[:ROWS_PER_SECTION]]
    return {"address": address, "sections": sections, "truncated": truncated}


def _row(row: Any) -> dict[str, Any]:
    return {
        column.name: _plain(getattr(row, column.key))
        for column in row.__table__.columns
        if column.name not in SECRET_COLUMNS
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Erased:
    contact_email: bool


def erase(session: Session, wallet: str) -> Erased:
    """Deletes the wallet's personal data that nothing owed depends on (its e-mail)."""
    had = session.get(ContactEmail, wallet.lower()) is not None
    if had:
        notify.delete_contact(session, wallet)
    return Erased(contact_email=had)
