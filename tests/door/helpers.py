"""Factories for the door's tests: events, tickets and devices written straight to the database
(no chain behind them), and a clock to scan at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from backend.catalog.models import Event
from backend.door import codes
from backend.door import service as door
from backend.door.models import ScannerDevice
from backend.sales.models import Order
from backend.tickets.models import Ticket
from tests.helpers import insert_event, wallet

SECRET = b"door-test-secret"
POLICY = door.DoorPolicy(
    key=codes.door_key(SECRET),
    reveal=timedelta(hours=24),
    offline_window=timedelta(hours=6),
    future_tolerance=timedelta(minutes=2),
)
NOW = datetime(2026, 12, 7, 19, 0, tzinfo=UTC)


@dataclass
class Door:
    event: Event
    device: ScannerDevice
    credential: str


def door_event(
    session: Session, tickets: int = 3, starts_in: timedelta = timedelta(hours=1)
) -> Door:
    """An event starting ``starts_in`` after NOW, ``tickets`` tickets (token ids 256, 512, ...)
    held by wallet(100 + i), and one scanner at gate "North"."""
    event = insert_event(
        session, sale_opens_at=NOW - timedelta(days=2), max_admitted=10, supply=100
    )
    event.starts_at = NOW + starts_in
    event.ends_at = event.starts_at + timedelta(hours=4)
    for i in range(1, tickets + 1):
        order = Order(
            event_id=event.id,
            tier_id=event.tiers[0].id,
            buyer_address=wallet(100 + i),
            quantity=1,
            unit_price_cents=1000,
            currency="eur",
            status="fulfilled",
        )
        session.add(order)
        session.flush()
        session.add(
            Ticket(
                event_id=event.id,
                tier_id=event.tiers[0].id,
                order_id=order.id,
                token_id=token(i),
                owner_address=wallet(100 + i),
                seat=f"GA {i}",
                metadata_cid="Qm",
                tx_hash="0x" + "1" * 64,
            )
        )
    device, credential = door.register_device(session, event.id, "North", "", wallet(1))
    session.flush()
    return Door(event, device, credential)


def token(i: int) -> int:
    return i * 256


def code_for(
    session: Session, event_id: int, token_id: int, at: datetime, policy: door.DoorPolicy = POLICY
) -> str:
    """The code the ticket's current holder's phone shows at ``at``."""
    ticket = session.query(Ticket).filter_by(event_id=event_id, token_id=token_id).one()
    secret = policy.secret(event_id, token_id, ticket.owner_address, ticket.holder_epoch)
    return codes.issue(secret, event_id, token_id, ticket.holder_epoch, at.timestamp()).text()


def scan(
    session: Session,
    setup: Door,
    code: str,
    scan_id: str,
    at: datetime = NOW,
    *,
    device: ScannerDevice | None = None,
    offline_admitted: bool | None = None,
    now: datetime | None = None,
) -> door.ScanAnswer:
    request = door.ScanRequest(code, "North", scan_id, at, offline_admitted)
    return door.scan(session, POLICY, device or setup.device, request, now or at)


def transfer(session: Session, event_id: int, token_id: int, to: str) -> None:
    """What the indexer's Transfer log does to a ticket (backend.tickets.chain_logs)."""
    ticket = session.query(Ticket).filter_by(event_id=event_id, token_id=token_id).one()
    ticket.previous_owner_address = ticket.owner_address
    ticket.owner_address = to
    ticket.holder_epoch += 1
    session.flush()
