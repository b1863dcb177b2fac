"""Events and tiers: creation (which deploys the event's ticket contract) and reads."""

from __future__ import annotations

import math
import re
import secrets
from datetime import datetime, timedelta
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.service import Principal
from backend.catalog.errors import EventDeploymentFailed, EventNotFound, InvalidEvent
from backend.catalog.models import Event, Tier
from backend.catalog.schemas import (
    Availability,
    CancellationOut,
    EventCreate,
    EventOut,
    TierAvailability,
    TierCreate,
    TierOut,
)
from backend.chain.client import ChainClient
from backend.chain.errors import ChainError
from backend.chain.types import EventTerms, TierTerms
from backend.config import Settings
from backend.db.base import utcnow
from backend.ipfs.blockstore import Blockstore
from backend.ipfs.cid import parse_cid
from backend.queue.errors import NotEventOrganizer
from backend.tickets import metadata

GWEI = 10**9


def create_event(
    session: Session,
    chain: ChainClient,
    blockstore: Blockstore,
    settings: Settings,
    organizer: str,
    spec: EventCreate,
    now: datetime | None = None,
) -> Event:
    """Record an event and deploy its TicketEvent; on any failure nothing is recorded."""
    now = now or utcnow()
    _check_spec(spec, now)
    image_cid = blockstore.put(event_badge_svg(spec.name, spec.venue, spec.starts_at).encode())
    event = Event(
        name=spec.name,
        symbol=spec.symbol or default_symbol(spec.name),
        description=spec.description,
        venue=spec.venue,
        starts_at=spec.starts_at,
        sale_opens_at=spec.sale_opens_at,
        organizer_address=organizer.lower(),
        chain_id=chain.chain_id,
        chain_event_id=secrets.randbits(63),
        contract_address="",
        deploy_block=0,
        deploy_tx_hash="",
        image_cid=image_cid,
        max_admitted=spec.max_admitted or settings.max_admitted,
        admission_ttl_seconds=spec.admission_ttl_seconds or settings.admission_ttl_seconds,
        max_tickets_per_order=spec.max_tickets_per_order or settings.max_tickets_per_order,
        queue_opens_at=spec.queue_opens_at,
        admissions_per_minute=spec.admissions_per_minute or settings.admissions_per_minute,
        ends_at=spec.ends_at or spec.starts_at + timedelta(hours=settings.default_event_hours),
        resale_cap_bps=_or_default(spec.resale_cap_bps, settings.default_resale_cap_bps),
        royalty_bps=_or_default(spec.royalty_bps, settings.default_royalty_bps),
        transfers_locked=spec.transfers_locked,
        resale_enabled=spec.resale_enabled,
        resale_closes_before_seconds=spec.resale_closes_before_seconds,
        created_at=now,
    )
    event.tiers = [
        Tier(
            name=tier.name,
            price_cents=tier.price_cents,
            currency=settings.currency,
            supply=tier.supply,
            reserved=0,
            seats_assigned=0,
            chain_tier=index,
            price_gwei=_price_wei(tier, settings) // GWEI,
            per_wallet_limit=tier.per_wallet_limit,
        )
        for index, tier in enumerate(spec.tiers)
    ]
    session.add(event)
    session.flush()
    # One metadata document per tier, pinned before the contract can point at it.
    for tier_row in event.tiers:
        tier_row.metadata_cid = blockstore.put(
            metadata.encode(metadata.tier_metadata(event, tier_row))
        )
    # The deployment runs inside this transaction so a failure leaves no event behind. That holds
    # a write lock for one transaction's time: nothing on anvil, one block on a public chain,
    # where production runs PostgreSQL and the lock covers only the new rows.
    try:
        deployment = chain.create_event(_terms(event), [_tier_terms(t) for t in event.tiers])
    except ChainError as exc:
        raise EventDeploymentFailed(str(exc)) from exc
    event.contract_address = deployment.address
    event.deploy_tx_hash = deployment.tx_hash
    event.deploy_block = deployment.block_number
    return event


def _or_default(value: int | None, default: int) -> int:
    return default if value is None else value


def _price_wei(tier: TierCreate, settings: Settings) -> int:
    if tier.price_wei is not None:
        return tier.price_wei
    # Rounded down to whole gwei, which is all the contract accepts.
    return tier.price_cents * settings.wei_per_cent // GWEI * GWEI


def _terms(event: Event) -> EventTerms:
    return EventTerms(
        event_id=event.chain_event_id,
        name=event.name,
        symbol=event.symbol,
        organizer=event.organizer_address,
        sale_start=int(event.sale_opens_at.timestamp()),
        sale_end=int(event.starts_at.timestamp()),
        event_end=int(event.ends_at.timestamp()),
        resale_cap_bps=event.resale_cap_bps,
        royalty_bps=event.royalty_bps,
        transfers_locked=event.transfers_locked,
    )


def _tier_terms(tier: Tier) -> TierTerms:
    return TierTerms(
        price_wei=tier.price_gwei * GWEI,
        supply=tier.supply,
        per_wallet_limit=tier.per_wallet_limit,
        metadata_digest=parse_cid(tier.metadata_cid).digest,
    )


def _check_spec(spec: EventCreate, now: datetime) -> None:
    # The contract keeps the schedule in whole unix seconds (uint40) and refuses
    # saleStart >= saleEnd or saleEnd > eventEnd: compared here as it will compare them, so a
    # schedule it would refuse is a 422 naming the field, not a failed deployment.
    sale, starts = _unix_seconds(spec.sale_opens_at), _unix_seconds(spec.starts_at)
    if spec.starts_at <= now:
        raise InvalidEvent("starts_at must be in the future")
    if sale < 0:
        raise InvalidEvent("sale_opens_at must not be before 1970-01-01T00:00:00Z")
    if sale >= starts:
        raise InvalidEvent("sale_opens_at must be at least one whole second before starts_at")
    if spec.ends_at is not None and _unix_seconds(spec.ends_at) < starts:
        raise InvalidEvent("ends_at must not be before starts_at")
    if spec.queue_opens_at is not None and spec.queue_opens_at > spec.sale_opens_at:
        raise InvalidEvent("queue_opens_at must not be after sale_opens_at")
    names = [tier.name for tier in spec.tiers]
    if len(set(names)) != len(names):
        raise InvalidEvent("tier names must be unique within an event")


def _unix_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch, as the contract stores them (floored, not truncated)."""
    return math.floor(moment.timestamp())


def default_symbol(name: str) -> str:
    letters = re.sub(r"[^A-Za-z0-9]", "", name).upper()
    return letters[:8] or "TIX"


def event_badge_svg(name: str, venue: str, starts_at: datetime) -> str:
    """A small generated image for the ticket metadata: event facts only, never buyer data."""
    when = starts_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="300" viewBox="0 0 600 300">'
        '<rect width="600" height="300" rx="24" fill="#111827"/>'
        f'<text x="40" y="120" font-family="sans-serif" font-size="36" fill="#f9fafb">'
        f"{escape(name[:40])}</text>"
        f'<text x="40" y="180" font-family="sans-serif" font-size="22" fill="#9ca3af">'
        f"{escape(venue[:60])}</text>"
        f'<text x="40" y="230" font-family="sans-serif" font-size="22" fill="#9ca3af">{when}</text>'
        "</svg>"
    )


def get_event(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise EventNotFound(event_id)
    return event


def managed_event(session: Session, event_id: int, principal: Principal) -> Event:
    """The event, for its organizer or an admin; 403 for anyone else, 404 if there is none."""
    event = get_event(session, event_id)
    if not principal.manages(event.organizer_address):
        raise NotEventOrganizer(event_id, principal.address)
    return event


def list_events(session: Session, limit: int = 100, offset: int = 0) -> list[Event]:
    query = select(Event).order_by(Event.starts_at, Event.id).limit(limit).offset(offset)
    return list(session.scalars(query))


def get_tier(session: Session, event_id: int, tier_id: int) -> Tier | None:
    tier = session.get(Tier, tier_id)
    if tier is None or tier.event_id != event_id:
        return None
    return tier


def availability(session: Session, event_id: int, now: datetime | None = None) -> Availability:
    now = now or utcnow()
    event = get_event(session, event_id)
    tiers = [
        TierAvailability(
            tier_id=tier.id,
            name=tier.name,
            price_cents=tier.price_cents,
            currency=tier.currency,
            supply=tier.supply,
            remaining=tier.supply - tier.reserved,
            sold_out=tier.reserved >= tier.supply,
        )
        for tier in event.tiers
    ]
    return Availability(
        event_id=event.id,
        on_sale=event.cancelled_at is None and event.sale_opens_at <= now < event.starts_at,
        sold_out=all(tier.sold_out for tier in tiers),
        tiers=tiers,
    )


def to_out(event: Event) -> EventOut:
    return EventOut(
        id=event.id,
        name=event.name,
        symbol=event.symbol,
        description=event.description,
        venue=event.venue,
        starts_at=event.starts_at,
        sale_opens_at=event.sale_opens_at,
        organizer_address=event.organizer_address,
        chain_id=event.chain_id,
        chain_event_id=event.chain_event_id,
        contract_address=event.contract_address,
        deploy_tx_hash=event.deploy_tx_hash,
        image_uri=f"ipfs://{event.image_cid}",
        max_admitted=event.max_admitted,
        admission_ttl_seconds=event.admission_ttl_seconds,
        max_tickets_per_order=event.max_tickets_per_order,
        queue_opens_at=event.queue_opens_at,
        admissions_per_minute=event.admissions_per_minute,
        ends_at=event.ends_at,
        resale_cap_bps=event.resale_cap_bps,
        royalty_bps=event.royalty_bps,
        transfers_locked=event.transfers_locked,
        resale_enabled=event.resale_enabled,
        resale_closes_before_seconds=event.resale_closes_before_seconds,
        tiers=[
            TierOut(
                id=tier.id,
                name=tier.name,
                price_cents=tier.price_cents,
                currency=tier.currency,
                supply=tier.supply,
                price_wei=tier.price_gwei * GWEI,
                per_wallet_limit=tier.per_wallet_limit,
                metadata_uri=f"ipfs://{tier.metadata_cid}",
            )
            for tier in event.tiers
        ],
        cancelled=event.cancelled_at is not None,
        cancellation=_cancellation_out(event),
    )


def _cancellation_out(event: Event) -> CancellationOut | None:
    if event.cancelled_at is None:
        return None
    return CancellationOut(
        cancelled_at=event.cancelled_at,
        reason=event.cancel_reason or "",
        cancelled_by=event.cancelled_by or "",
        on_chain=event.chain_cancelled_at is not None,
        tx_hash=event.chain_cancel_tx_hash,
    )
