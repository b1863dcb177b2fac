"""The resale market: listing a ticket (the holder's signed sell order), browsing, delisting,
the unsigned transaction that buys a listing with ether, each event's resale policy, and how
listings follow what the indexer sees on chain. No HTTP here.

The contract is the guard of every rule (cap, royalty, nonce, signer, deadline); the checks
here repeat them only to answer early with a clear 4xx, before anything is stored. What happened
on chain reaches listings through the indexer (backend.tickets.chain_logs calls the ``on_*``
functions below in its transaction); nothing here re-reads the chain to learn a listing's fate.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session
from web3 import Web3

from backend.auth.service import Principal
from backend.catalog.errors import EventCancelled
from backend.catalog.models import Event, Tier
from backend.catalog.service import get_event, managed_event
from backend.chain.client import ChainClient
from backend.chain.errors import ContractRevert
from backend.chain.protocol import ZERO_ADDRESS, sell_order_message
from backend.chain.types import TicketState, UnsignedTx
from backend.db.base import utcnow
from backend.door import service as door
from backend.notify import service as notify
from backend.resale import payouts, purchases
from backend.resale.errors import (
    CardPayoutNotAllowed,
    CardPayoutTooHigh,
    CardRailUnavailable,
    HolderNotConfirmed,
    InvalidCursor,
    InvalidListing,
    ListingNotFound,
    ListingNotLive,
    ListingReserved,
    NotListingBuyer,
    NotListingSeller,
    NotTicketHolder,
    OwnListing,
    PriceAboveCap,
    ResaleClosed,
    SignatureNotByHolder,
    StaleSellOrder,
    TicketNotFound,
    TicketNotResellable,
)
from backend.resale.models import (
    CARD,
    DELISTED,
    ETHER,
    EXPIRED,
    LIVE,
    ON_MARKET,
    P_RESERVED,
    RESERVED,
    SOLD,
    VOID,
    Listing,
)
from backend.sales.models import Order
from backend.schemas import MAX_ID
from backend.tickets.models import Ticket

log = logging.getLogger("fairtix.resale")

GWEI = 10**9
BPS = 10_000
MAX_BIGINT = 2**63 - 1
DEFAULT_LISTING_DAYS = 30
"""A sell order's deadline when the seller names none: this long, or the resale window's
close if that comes first."""

Sort = Literal["price", "newest"]


class NeedsSession(Exception):
    """The listing lane (backend/resale/quick.py) can't decide this without more reads: the
    route decides it, through the ORM."""


# -- what a listing shows ------------------------------------------------------------------


@dataclass(frozen=True)
class Money:
    """A ticket's resale money at a price: what the contract will compute on settlement."""

    face_wei: int
    cap_wei: int
    price_wei: int
    royalty_wei: int

    @property
    def seller_receives_wei(self) -> int:
        return self.price_wei - self.royalty_wei


def money(event: Event, tier: Tier, price_wei: int) -> Money:
    # As TicketEvent.buyResale computes them: cap = face * capBps / 10000, royalty likewise.
    face = tier.price_gwei * GWEI
    return Money(
        face_wei=face,
        cap_wei=face * event.resale_cap_bps // BPS,
        price_wei=price_wei,
        royalty_wei=price_wei * event.royalty_bps // BPS,
    )


def price_cents(price_wei: int, wei_per_cent: int) -> int | None:
    """The fiat price a card buyer would pay, rounded up to the cent; None without a rate."""
    return -(-price_wei // wei_per_cent) if wei_per_cent > 0 else None


def shown_status(listing: Listing, now: datetime) -> str:
    """The status to show: a live listing whose deadline passed is expired, even before the
    worker's sweep records it, so a void order is never shown as available; a card buyer's
    reservation whose payment window lapsed unpaid is live again, before the sweep too."""
    if listing.status in ON_MARKET and listing.deadline <= _unix(now):
        return EXPIRED
    if reservation_lapsed(listing, now):
        return LIVE
    return listing.status


def reservation_lapsed(listing: Listing, now: datetime) -> bool:
    """A reserved listing whose card buyer did not pay within the window (a paid reservation
    has no end: it holds until its settlement is decided)."""
    return (
        listing.status == RESERVED
        and listing.reserved_until is not None
        and listing.reserved_until <= now
    )


@dataclass(frozen=True)
class ListingView:
    listing: Listing
    event: Event
    tier: Tier
    seat: str


# -- policy --------------------------------------------------------------------------------


def window_closes_at(event: Event) -> datetime:
    """When listing and buying close: the chosen time before the event starts."""
    return event.starts_at - timedelta(seconds=event.resale_closes_before_seconds)


def is_open(event: Event, now: datetime) -> bool:
    return event.cancelled_at is None and event.resale_enabled and now < window_closes_at(event)


def require_open(event: Event, now: datetime) -> None:
    if event.cancelled_at is not None:
        raise EventCancelled(event.id, event.cancel_reason)
    if not event.resale_enabled:
        raise ResaleClosed(event.id, "the organizer has turned resale off for this event")
    closes = window_closes_at(event)
    if now >= closes:
        raise ResaleClosed(event.id, f"the resale window closed at {closes.isoformat()}")


def set_policy(
    session: Session,
    principal: Principal,
    event_id: int,
    *,
    enabled: bool,
    closes_before_seconds: int,
) -> Event:
    """The organizer's resale policy. Turning resale off takes every listing off the market
    (their signed orders stay fillable on chain until their deadline: see docs/resale.md)."""
    event = managed_event(session, event_id, principal)
    session.refresh(event, with_for_update=True)
    event.resale_enabled = enabled
    event.resale_closes_before_seconds = closes_before_seconds
    if not enabled:
        void_event_listings(session, event.id, "the organizer turned resale off")
    return event


# -- listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SellOrderTerms:
    """What a holder asks for: the order's fields but the nonce, which the chain decides."""

    event_id: int
    token_id: int
    price_wei: int
    deadline: int | None = None
    payout: str = ETHER
    """How the seller is paid: ``ether`` (credited on chain) or ``card`` (back to the card that
    bought the ticket; the order names the backend's treasury as payee)."""
    buyer: str | None = None
    """A private sale's only buyer; None for the open market."""


@dataclass(frozen=True)
class CardPayout:
    """Where a card payout goes: the card payment that bought the seller's ticket, and the most
    that may go back to it, and what this listing's sale would give back."""

    order_id: int | None
    purchase_id: int | None
    limit_cents: int
    payout_cents: int


@dataclass(frozen=True)
class Checked:
    """Every check the database can answer passed: what the order will say."""

    facts: TicketFacts
    deadline: int
    money: Money
    card: CardPayout | None

    @property
    def event(self) -> Event:
        return self.facts.event

    @property
    def ticket(self) -> Ticket:
        return self.facts.ticket

    @property
    def tier(self) -> Tier:
        return self.facts.tier


@dataclass(frozen=True)
class Draft:
    """A sell order ready to sign: its EIP-712 document and what it would list as."""

    view: ListingView
    typed_data: dict[str, Any]
    money: Money
    nonce: int
    deadline: int


def ticket_of(
    session: Session, event_id: int, token_id: int, *, for_update: bool = False
) -> Ticket:
    query = select(Ticket).where(Ticket.event_id == event_id, Ticket.token_id == token_id)
    ticket = session.scalar(query.with_for_update() if for_update else query)
    if ticket is None:
        raise TicketNotFound(event_id, token_id)
    return ticket


def _constants(values: Sequence[str]) -> list[ColumnElement[str]]:
    """Our own status names written into the SQL: an IN list of bound values is expanded again
    on every execution (a few percent of a listing request's CPU)."""
    if not all(value.isidentifier() for value in values):
        raise ValueError(f"not a status name: {values!r}")
    return [literal_column(f"'{value}'") for value in values]


@dataclass(frozen=True)
class TicketFacts:
    """A ticket, its event and tier, and every other fact a listing request checks or needs,
    read in one statement (:data:`_TICKET_ROW`)."""

    event: Event
    ticket: Ticket
    tier: Tier
    admitted: bool
    """Let in at the door (door.is_admitted)."""
    on_market: bool
    """A listing of the ticket is on the market (live or reserved): to replace, or refuse."""
    endpoints: bool
    """Some webhook endpoint may want the event's notifications (else publish reads none)."""
    card: payouts.KnownFacts
    """What a card payout's source is decided by (payouts.card_source)."""


def facts_statement(*selected: Any) -> Select[Any]:
    """``selected`` (the models, or their columns) and every other fact a listing request
    checks, of the ticket with bind parameters ``event_id`` and ``token_id``, in one
    statement. The facts beside the ticket are correlated EXISTS / scalar subqueries, which
    SQLite runs too."""
    return (
        select(
            *selected,
            door.admitted_clause(Ticket.event_id, Ticket.token_id).label("admitted"),
            exists()
            .where(Listing.ticket_id == Ticket.id, Listing.status.in_(_constants(ON_MARKET)))
            .label("on_market"),
            notify.any_subscribed_clause(Event.id, Event.organizer_address).label("endpoints"),
            payouts.resold_clause(Ticket.id).label("resold"),
            payouts.given_back_clause(Ticket.id, Order.payment_intent_id).label("given_back"),
        )
        .select_from(Ticket)
        .join(Event, Event.id == Ticket.event_id)
        .join(Tier, Tier.id == Ticket.tier_id)
        .outerjoin(Order, Order.id == Ticket.order_id)
        .where(Ticket.event_id == bindparam("event_id"), Ticket.token_id == bindparam("token_id"))
    )


FACT_MODELS = (Ticket, Event, Tier, Order)
"""The models :data:`_TICKET_ROW` loads, in its order; the facts come after them."""

# Everything a listing request reads, in one statement built once: each statement (built, sent,
# its rows made objects) cost about half a millisecond of the API's CPU, and a card listing
# made eight.
_TICKET_ROW = facts_statement(*FACT_MODELS)
# Listing takes the ticket's row lock first, alone: the facts are then read in a statement that
# starts after the lock is ours, so a listing (or admission) committed by whoever held it is
# seen. Read in the locking statement itself, they would be as of before the wait.
LOCK_TICKET = (
    select(Ticket.id)
    .where(Ticket.event_id == bindparam("event_id"), Ticket.token_id == bindparam("token_id"))
    .with_for_update()
)


def _ticket_row(session: Session, event_id: int, token_id: int, for_update: bool) -> TicketFacts:
    """The ticket and everything checked about it; 404 event-not-found, then ticket-not-found."""
    params = {"event_id": event_id, "token_id": token_id}
    if for_update:
        session.execute(LOCK_TICKET, params)
    row = session.execute(_TICKET_ROW, params).one_or_none()
    if row is None:
        get_event(session, event_id)  # raises EventNotFound if that is why
        raise TicketNotFound(event_id, token_id)
    ticket, event, tier, order, admitted, on_market, endpoints, resold, given_back = row
    known = payouts.KnownFacts(bool(resold), order, int(given_back or 0))
    return TicketFacts(event, ticket, tier, bool(admitted), bool(on_market), bool(endpoints), known)


def draft_sell_order(
    session: Session,
    chain: ChainClient,
    wallet: str,
    terms: SellOrderTerms,
    now: datetime | None = None,
    *,
    wei_per_cent: int = 0,
) -> Draft:
    """The sell order the holder's wallet signs for ``terms``, with the ticket's sale nonce as
    the chain has it now; refused early, with the reason, if it could not be listed."""
    now = now or utcnow()
    checked = _check_terms(session, wallet, terms, now, wei_per_cent=wei_per_cent)
    nonce = _check_on_chain(chain, checked.event, checked.ticket, wallet, None)
    return draft_of(checked, chain, wallet, terms, nonce)


def draft_of(
    checked: Checked, chain: ChainClient, wallet: str, terms: SellOrderTerms, nonce: int
) -> Draft:
    """The sell order to sign, once every check passed and the chain told its nonce."""
    unsaved = _unsaved(checked, wallet, terms, nonce, chain.signer_address)
    typed = chain.sell_order_typed_data(checked.event.contract_address, order_of(unsaved))
    view = ListingView(unsaved, checked.event, checked.tier, checked.ticket.seat)
    return Draft(view, typed, checked.money, nonce, checked.deadline)


def create_listing(
    session: Session,
    chain: ChainClient,
    wallet: str,
    terms: SellOrderTerms,
    nonce: int,
    signature: str,
    now: datetime | None = None,
    *,
    wei_per_cent: int = 0,
) -> ListingView:
    """Lists the ticket under the holder's signed order, after checking everything the
    contract will check (signer, nonce, cap, deadline, ticket state) and the event's policy.
    A listing of the ticket already on the market is replaced (not one a card buyer has
    reserved: 409 listing-reserved). Nothing is written when any check fails."""
    now = now or utcnow()
    checked = _check_terms(session, wallet, terms, now, for_update=True, wei_per_cent=wei_per_cent)
    event, ticket, tier = checked.event, checked.ticket, checked.tier
    listing = signed_listing(checked, chain, wallet, terms, nonce, signature)
    _check_on_chain(chain, event, ticket, wallet, nonce)
    if not checked.facts.endpoints:
        notify.none_subscribed(session, event.id)
    if checked.facts.on_market:  # read after the ticket's lock was taken: nobody adds one now
        for old in _on_market(session, ticket.id):
            if old.status == RESERVED and not reservation_lapsed(old, now):
                raise ListingReserved(old.id)
            _close(session, old, DELISTED, "replaced by a new listing of the ticket", now)
        session.flush()  # the old one off the market before the new one takes its place
    listing.created_at = now
    listing.id = session.execute(INSERT_LISTING, row_of(listing)).scalar_one()
    _publish_listing(session, notify.LISTING_CREATED, listing)
    log_listed(listing)
    return ListingView(listing, event, tier, ticket.seat)


def signed_listing(
    checked: Checked,
    chain: ChainClient,
    wallet: str,
    terms: SellOrderTerms,
    nonce: int,
    signature: str,
) -> Listing:
    """The listing to store, once every check the database answers passed and the order is
    signed by the ticket's holder (SignatureNotByHolder if not)."""
    listing = _unsaved(checked, wallet, terms, nonce, chain.signer_address)
    event, ticket = checked.event, checked.ticket
    signer = chain.sell_order_signer(event.contract_address, order_of(listing), signature)
    if signer is None or signer != ticket.owner_address:
        shown = Web3.to_checksum_address(signer) if signer is not None else None
        raise SignatureNotByHolder(ticket.token_id, shown)
    listing.signature = signature.lower()
    return listing


def log_listed(listing: Listing) -> None:
    log.info(
        "ticket listed",
        extra={
            "listing_id": listing.id,
            "token_id": listing.token_id,
            "price_gwei": listing.price_gwei,
        },
    )


# The new listing goes in as one Core INSERT: nothing else in the request touches it again, so
# the unit of work's flush (state tracking, dependency sort) was half a millisecond for nothing.
# The Listing object stays transient; it carries its id for the answer and the notification.
_LISTINGS = cast(Table, Listing.__table__)
LISTING_COLUMNS = tuple(c.key for c in _LISTINGS.columns if c.key != "id")
INSERT_LISTING = insert(_LISTINGS).returning(_LISTINGS.c.id)


def row_of(listing: Listing) -> dict[str, Any]:
    return {key: getattr(listing, key) for key in LISTING_COLUMNS}


def _unsaved(
    checked: Checked, wallet: str, terms: SellOrderTerms, nonce: int, treasury: str
) -> Listing:
    ticket, card = checked.ticket, checked.card
    return Listing(
        event_id=checked.event.id,
        tier_id=ticket.tier_id,
        ticket_id=ticket.id,
        token_id=ticket.token_id,
        seller_address=wallet.lower(),
        price_gwei=terms.price_wei // GWEI,
        sale_nonce=nonce,
        deadline=checked.deadline,
        signature="",
        status=LIVE,
        payout_rail=CARD if card is not None else ETHER,
        # The card rail's proceeds go to the treasury, which pays the seller back by card.
        payee_address=treasury.lower() if card is not None else None,
        named_buyer=terms.buyer.lower() if terms.buyer else None,
        payout_order_id=card.order_id if card is not None else None,
        payout_purchase_id=card.purchase_id if card is not None else None,
        payout_limit_cents=card.limit_cents if card is not None else None,
        payout_cents=card.payout_cents if card is not None else None,
    )


def _check_terms(
    session: Session,
    wallet: str,
    terms: SellOrderTerms,
    now: datetime,
    *,
    for_update: bool = False,
    wei_per_cent: int = 0,
) -> Checked:
    """Every check the database can answer, cheapest first; returns the deadline to sign."""
    facts = _ticket_row(session, terms.event_id, terms.token_id, for_update)
    return check_terms(facts, wallet, terms, now, wei_per_cent=wei_per_cent, session=session)


def check_terms(
    facts: TicketFacts,
    wallet: str,
    terms: SellOrderTerms,
    now: datetime,
    *,
    wei_per_cent: int,
    session: Session | None,
) -> Checked:
    """:func:`_check_terms` on facts already read. Without a session (the listing lane), a
    card payout of a ticket resold before raises NeedsSession: its source takes more reads."""
    event, ticket, tier = facts.event, facts.ticket, facts.tier
    require_open(event, now)
    if ticket.owner_address != wallet.lower():
        raise NotTicketHolder(ticket.token_id, wallet)
    if ticket.refund_tx_hash is not None:
        raise TicketNotResellable(ticket.token_id, "it was refunded (and burned)")
    # Let in at the door: from the admission's commit, not only once the chain's check-in is seen.
    if ticket.checkin_tx_hash is not None or facts.admitted:
        raise TicketNotResellable(ticket.token_id, "it was checked in at the door")
    closes = math.floor(window_closes_at(event).timestamp())
    deadline = terms.deadline
    if deadline is None:
        deadline = min(_unix(now) + DEFAULT_LISTING_DAYS * 86_400, closes)
    if deadline <= _unix(now):
        raise InvalidListing("deadline must be in the future")
    if deadline > closes:
        raise InvalidListing(
            f"deadline must not be after the resale window closes ({closes}, unix seconds)"
        )
    if terms.price_wei % GWEI:
        raise InvalidListing("price_wei must be a whole number of gwei (a multiple of 10^9)")
    amounts = money(event, tier, terms.price_wei)
    if amounts.price_wei > amounts.cap_wei:
        raise PriceAboveCap(amounts.price_wei, amounts.cap_wei)
    if terms.buyer is not None and terms.buyer.lower() == wallet.lower():
        raise InvalidListing("buyer must be another wallet than the seller's")
    card = None
    if terms.payout == CARD:
        card = _card_payout(session, facts, wallet, amounts, wei_per_cent)
    return Checked(facts, deadline, amounts, card)


def _card_payout(
    session: Session | None, facts: TicketFacts, wallet: str, amounts: Money, wei_per_cent: int
) -> CardPayout:
    """The card payment a card payout of this sale goes back to, or why there is none: the
    seller must hold the ticket through a card payment (the primary card order, or a settled
    card resale purchase), and the payout can't exceed what that card paid for this ticket."""
    if wei_per_cent <= 0:
        raise CardRailUnavailable()
    ticket, tier = facts.ticket, facts.tier
    if session is None and facts.card.resold:
        raise NeedsSession("a card payout of a ticket resold before")
    source = payouts.card_source(cast(Session, session), ticket, wallet, facts.card)
    if isinstance(source, str):
        raise CardPayoutNotAllowed(ticket.token_id, source)
    payout_cents = amounts.seller_receives_wei // wei_per_cent
    if payout_cents > source.limit_cents:
        raise CardPayoutTooHigh(ticket.token_id, payout_cents, source.limit_cents, tier.currency)
    return CardPayout(source.order_id, source.purchase_id, source.limit_cents, payout_cents)


def _check_on_chain(
    chain: ChainClient, event: Event, ticket: Ticket, wallet: str, nonce: int | None
) -> int:
    """The holder and the ticket as the chain has them now (one batched read); returns the sale
    nonce. The indexer may lag the chain: a ticket that moved is refused until it catches up."""
    try:
        owner, state = chain.holder_and_state(event.contract_address, ticket.token_id)
    except ContractRevert as exc:  # burned by a refund claim the indexer has not seen yet
        raise TicketNotResellable(ticket.token_id, f"it is gone on chain ({exc})") from exc
    return check_on_chain(owner, state, ticket, wallet, nonce)


def check_on_chain(
    owner: str, state: TicketState, ticket: Ticket, wallet: str, nonce: int | None
) -> int:
    """:func:`_check_on_chain` on the chain's answer already had; returns the sale nonce."""
    if owner.lower() != wallet.lower():
        raise HolderNotConfirmed(ticket.token_id, owner)
    if state.used:
        raise TicketNotResellable(ticket.token_id, "it was checked in at the door")
    if nonce is not None and nonce != state.sale_nonce:
        raise StaleSellOrder(ticket.token_id, nonce, state.sale_nonce)
    return state.sale_nonce


def _on_market(session: Session, ticket_id: int) -> Sequence[Listing]:
    return session.scalars(
        select(Listing).where(Listing.ticket_id == ticket_id, Listing.status.in_(ON_MARKET))
    ).all()


# -- reading -------------------------------------------------------------------------------


def _views(session: Session, query: Any) -> list[ListingView]:
    rows = session.execute(
        query.join(Event, Event.id == Listing.event_id)
        .join(Tier, Tier.id == Listing.tier_id)
        .join(Ticket, Ticket.id == Listing.ticket_id)
    )
    return [ListingView(listing, event, tier, seat) for listing, event, tier, seat in rows]


def _select() -> Any:
    return select(Listing, Event, Tier, Ticket.seat)


def get_listing(session: Session, listing_id: int, *, for_update: bool = False) -> ListingView:
    query = _select().where(Listing.id == listing_id)
    found = _views(session, query.with_for_update(of=Listing) if for_update else query)
    if not found:
        raise ListingNotFound(listing_id)
    return found[0]


def browse(
    session: Session,
    event_id: int,
    *,
    tier_id: int | None = None,
    max_price_wei: int | None = None,
    sort: Sort = "price",
    cursor: str | None = None,
    limit: int = 50,
    now: datetime | None = None,
) -> tuple[list[ListingView], str | None]:
    """The event's listings on the market, cheapest (or newest) first, a page at a time:
    the cursor returned names where the next page starts (keyset, stable as listings come and
    go). Listings past their deadline are left out even before the sweep expires them."""
    now = now or utcnow()
    event = get_event(session, event_id)
    if not is_open(event, now):
        # Nothing there can be bought: the organizer closed resale (or moved its window) after
        # these orders were signed, or the event was cancelled.
        return [], None
    query = _select().where(
        Listing.event_id == event_id,
        or_(
            Listing.status == LIVE,
            and_(Listing.status == RESERVED, Listing.reserved_until <= now),
        ),
        Listing.deadline > _unix(now),
        # A private sale is for its named buyer only: not on the public market.
        Listing.named_buyer.is_(None),
    )
    if tier_id is not None:
        query = query.where(Listing.tier_id == tier_id)
    if max_price_wei is not None:
        query = query.where(Listing.price_gwei <= min(max_price_wei // GWEI, MAX_BIGINT))
    if sort == "price":
        if cursor is not None:
            price, after = _price_cursor(cursor)
            query = query.where(
                or_(
                    Listing.price_gwei > price,
                    and_(Listing.price_gwei == price, Listing.id > after),
                )
            )
        query = query.order_by(Listing.price_gwei, Listing.id)
    else:
        if cursor is not None:
            query = query.where(Listing.id < id_cursor(cursor))
        query = query.order_by(Listing.id.desc())
    page = _views(session, query.limit(limit))
    next_cursor = None
    if len(page) == limit:
        last = page[-1].listing
        next_cursor = f"{last.price_gwei}.{last.id}" if sort == "price" else str(last.id)
    return page, next_cursor


_PRICE_CURSOR = re.compile(r"^([0-9]{1,19})\.([0-9]{1,10})$")
_ID_CURSOR = re.compile(r"^[0-9]{1,10}$")


def _price_cursor(cursor: str) -> tuple[int, int]:
    match = _PRICE_CURSOR.match(cursor)
    if match is None:
        raise InvalidCursor(cursor)
    price, listing_id = int(match[1]), int(match[2])
    if price > MAX_BIGINT or listing_id > MAX_ID:
        raise InvalidCursor(cursor)
    return price, listing_id


def id_cursor(cursor: str) -> int:
    if _ID_CURSOR.match(cursor) is None or int(cursor) > MAX_ID:
        raise InvalidCursor(cursor)
    return int(cursor)


def listings_of(
    session: Session, wallet: str, *, before_id: int | None = None, limit: int = 50
) -> list[ListingView]:
    """A seller's listings, newest first, in every state."""
    query = _select().where(Listing.seller_address == wallet.lower())
    if before_id is not None:
        query = query.where(Listing.id < before_id)
    return _views(session, query.order_by(Listing.id.desc()).limit(limit))


# -- delisting and buying ------------------------------------------------------------------


def delist(
    session: Session, chain: ChainClient, wallet: str, listing_id: int, now: datetime | None = None
) -> tuple[ListingView, UnsignedTx]:
    """Takes the seller's listing off the market at once, and returns the ``cancelSellOrders``
    transaction that voids the signed order on chain: until it is mined (or the deadline
    passes), anyone holding the order can still fill it. Delisting again answers the same."""
    now = now or utcnow()
    view = get_listing(session, listing_id, for_update=True)
    listing = view.listing
    if listing.seller_address != wallet.lower():
        raise NotListingSeller(listing_id, wallet)
    if listing.status == RESERVED and not reservation_lapsed(listing, now):
        # A card buyer is paying (or has paid) for it under the signed order: delisting here
        # could not stop the settlement, and would only mislead the seller.
        raise ListingReserved(listing_id)
    if listing.status in ON_MARKET:
        _close(session, listing, DELISTED, "delisted by its seller", now)
    elif listing.status != DELISTED:
        raise ListingNotLive(listing_id, listing.status)
    tx = chain.cancel_sell_orders_transaction(view.event.contract_address, listing.token_id)
    return view, tx


def buy_with_ether(
    session: Session, chain: ChainClient, wallet: str, listing_id: int, now: datetime | None = None
) -> tuple[ListingView, UnsignedTx]:
    """The unsigned ``buyResale`` transaction for the buyer's wallet, paying the listing's
    price. Nothing is recorded: the sale is, when the indexer sees its Resold log."""
    now = now or utcnow()
    view = get_listing(session, listing_id)
    require_buyable(view, wallet, now)
    tx = chain.buy_resale_transaction(
        view.event.contract_address, order_of(view.listing), view.listing.signature
    )
    return view, tx


def require_buyable(view: ListingView, wallet: str, now: datetime) -> None:
    """What both rails check before handing a buyer a listing: on the market and not held for
    a paying card buyer, not the caller's own, for the caller if it names its buyer, resale open."""
    listing = view.listing
    status = shown_status(listing, now)
    if status == RESERVED:
        raise ListingReserved(listing.id)
    if status != LIVE:
        raise ListingNotLive(listing.id, status)
    if listing.seller_address == wallet.lower():
        raise OwnListing(listing.id)
    if listing.named_buyer is not None and listing.named_buyer != wallet.lower():
        raise NotListingBuyer(listing.id)
    require_open(view.event, now)


def order_of(listing: Listing) -> dict[str, Any]:
    """The listing's signed SellOrder, as the contract takes it."""
    return sell_order_message(
        listing.token_id,
        listing.price_gwei * GWEI,
        listing.sale_nonce,
        listing.deadline,
        buyer=_address(listing.named_buyer),
        payee=_address(listing.payee_address),
    )


def _address(value: str | None) -> str:
    return ZERO_ADDRESS if value is None else Web3.to_checksum_address(value)


# -- sweeps and cancellation -----------------------------------------------------------------


def expire_listings(session: Session, now: datetime | None = None, limit: int = 500) -> int:
    """Marks live listings whose deadline passed expired (the worker's sweep)."""
    now = now or utcnow()
    due = session.scalars(
        select(Listing)
        .where(Listing.status == LIVE, Listing.deadline <= _unix(now))
        .order_by(Listing.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for listing in due:
        _close(session, listing, EXPIRED, "its deadline passed unfilled", now)
    return len(due)


def void_event_listings(session: Session, event_id: int, reason: str) -> int:
    """Takes every listing of the event off the market (cancellation, resale turned off)."""
    found = session.scalars(
        select(Listing).where(Listing.event_id == event_id, Listing.status.in_(ON_MARKET))
    ).all()
    for listing in found:
        _close(session, listing, VOID, reason, utcnow())
    return len(found)


def _close(
    session: Session,
    listing: Listing,
    status: str,
    reason: str,
    now: datetime,
    *,
    tx_hash: str | None = None,
) -> None:
    listing.prior_status, listing.status = listing.status, status
    listing.status_reason, listing.closed_at, listing.closed_tx_hash = reason, now, tx_hash
    _publish_listing(session, notify.LISTING_CANCELLED, listing)


# -- what the indexer saw ------------------------------------------------------------------
# Called by backend.tickets.chain_logs in the indexer's transaction, and again (rollback_*)
# when a reorg orphans the log's block; logs are undone newest first.


def on_ticket_moved(session: Session, ticket: Ticket, tx_hash: str, reason: str) -> int:
    """A Transfer, SellOrdersCancelled, CheckedIn or refund claim: the ticket's signed orders
    are void on chain (its nonce moved, or it can't move at all)."""
    found = _on_market(session, ticket.id)
    for listing in found:
        _close(session, listing, VOID, reason, utcnow(), tx_hash=tx_hash)
    return len(found)


def on_admitted(session: Session, ticket_id: int) -> int:
    """The ticket was let in at the door: its listings come off the market in the admission's
    transaction, so nobody is handed a buy transaction for a ticket already used (the chain's
    check-in, which voids its signed orders there too, follows in a batch)."""
    found = _on_market(session, ticket_id)
    for listing in found:
        _close(session, listing, VOID, "the ticket was let in at the door", utcnow())
    return len(found)


def rollback_ticket_moved(session: Session, ticket: Ticket, tx_hash: str) -> int:
    """The log that voided the ticket's listing was orphaned: the listing is back on the
    market (the expiry sweep takes it off again if its deadline has passed meanwhile)."""
    found = session.scalars(
        select(Listing).where(
            Listing.ticket_id == ticket.id,
            Listing.status == VOID,
            Listing.closed_tx_hash == tx_hash,
        )
    ).all()
    if not found:
        return 0
    # A listing made since by the orphaned transfer's recipient is void with it.
    for other in _on_market(session, ticket.id):
        _close(
            session, other, VOID, f"its seller's ticket went back by a reorg of {tx_hash}", utcnow()
        )
    session.flush()
    for listing in found:
        # A card buyer's paid settlement still in flight keeps it held for them.
        held = purchases.active_purchase(session, listing.id)
        paid = held is not None and held.status != P_RESERVED
        listing.status, listing.prior_status = (RESERVED if paid else LIVE), None
        listing.status_reason = listing.closed_at = listing.closed_tx_hash = None
        _publish_listing(session, notify.LISTING_CREATED, listing, reopened=True)
    return len(found)


def on_resold(
    session: Session,
    ticket: Ticket,
    *,
    seller: str,
    buyer: str,
    price_wei: int,
    royalty_wei: int,
    tx_hash: str,
    block_number: int,
    payee: str | None = None,
) -> Listing | None:
    """A Resold log: the listing it filled is sold (its own Transfer log, applied a moment
    before, voided it), the card purchase that paid for it (if one did) settled, and its
    seller's payout made, once. None when the order filled was none of our listings."""
    seller, buyer = seller.lower(), buyer.lower()
    listing = None
    # Our listings are whole gwei; compared in gwei, so the SQL never leaves BIGINT's range.
    if price_wei % GWEI == 0 and price_wei // GWEI <= MAX_BIGINT:
        listing = session.scalar(
            select(Listing)
            .where(
                Listing.ticket_id == ticket.id,
                Listing.seller_address == seller,
                Listing.price_gwei == price_wei // GWEI,
                Listing.status != SOLD,
            )
            # The one this very transaction voided first, else the newest (delisted, expired).
            .order_by(case((Listing.closed_tx_hash == tx_hash, 0), else_=1), Listing.id.desc())
            .limit(1)
        )
    if listing is not None:
        listing.prior_status, listing.status = listing.status, SOLD
        listing.buyer_address, listing.sold_tx_hash = buyer, tx_hash
        listing.royalty_wei = str(royalty_wei)
        listing.closed_at = listing.closed_at or utcnow()
        listing.status_reason = None
        listing.reserved_until = None
        purchases.on_settled(session, listing.id, buyer, tx_hash)
        payouts.on_sold(session, listing, payee=payee, price_wei=price_wei, royalty_wei=royalty_wei)
    notify.publish(
        session,
        notify.TICKET_RESOLD,
        ticket.event_id,
        {
            "listing_id": listing.id if listing is not None else None,
            "token_id": ticket.token_id,
            "seller": seller,
            "buyer": buyer,
            "price_wei": str(price_wei),
            "royalty_wei": str(royalty_wei),
            "tx_hash": tx_hash,
            "block_number": block_number,
            "reverted": False,
        },
    )
    return listing


def rollback_resold(
    session: Session, ticket: Ticket, *, tx_hash: str, block_number: int
) -> Listing | None:
    """The Resold log was orphaned: its listing goes back to what it was before (the Transfer
    log's rollback, which follows, puts a listing it voided back on the market)."""
    listing = session.scalar(
        select(Listing).where(Listing.ticket_id == ticket.id, Listing.sold_tx_hash == tx_hash)
    )
    if listing is not None:
        payouts.on_sale_orphaned(session, listing, tx_hash)
        purchases.on_settlement_orphaned(session, listing.id, tx_hash)
        listing.status, listing.prior_status = listing.prior_status or VOID, None
        listing.buyer_address = listing.sold_tx_hash = listing.royalty_wei = None
    notify.publish(
        session,
        notify.TICKET_RESOLD,
        ticket.event_id,
        {
            "listing_id": listing.id if listing is not None else None,
            "token_id": ticket.token_id,
            "tx_hash": tx_hash,
            "block_number": block_number,
            "reverted": True,
        },
    )
    return listing


# -- reports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResaleTotals:
    resales: int
    volume_wei: int
    royalties_wei: int
    on_market: int


def resale_totals(session: Session, event_id: int) -> ResaleTotals:
    """The event's resales through its listings: how many, for how much, the royalties."""
    sold = session.execute(
        select(Listing.price_gwei, Listing.royalty_wei).where(
            Listing.event_id == event_id, Listing.status == SOLD
        )
    ).all()
    on_market = session.scalar(
        select(func.count()).where(Listing.event_id == event_id, Listing.status == LIVE)
    )
    return ResaleTotals(
        resales=len(sold),
        volume_wei=sum(price * GWEI for price, _ in sold),
        royalties_wei=sum(int(royalty or 0) for _, royalty in sold),
        on_market=int(on_market or 0),
    )


# -- helpers -------------------------------------------------------------------------------


def _publish_listing(session: Session, kind: str, listing: Listing, **extra: Any) -> None:
    notify.publish(
        session,
        kind,
        listing.event_id,
        {
            "listing_id": listing.id,
            "token_id": listing.token_id,
            "tier_id": listing.tier_id,
            "seller": listing.seller_address,
            "price_wei": str(listing.price_gwei * GWEI),
            "deadline": listing.deadline,
            "status": listing.status,
            "reason": listing.status_reason,
            **extra,
        },
    )


def _unix(moment: datetime) -> int:
    return math.floor(moment.astimezone(UTC).timestamp())
