"""HTTP routes of the resale market: sell orders to sign, listings, browsing, delisting, buying
with ether, the organizer's resale policy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from backend.catalog.service import get_event
from backend.chain.types import UnsignedTx
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep, WalletDep
from backend.problems import problem_responses, register_problem
from backend.resale import service as resale
from backend.resale.errors import (
    HolderNotConfirmed,
    InvalidCursor,
    InvalidListing,
    ListingNotFound,
    ListingNotLive,
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
from backend.resale.schemas import (
    BuyOut,
    BuyRequest,
    DelistOut,
    ListingCreate,
    ListingOut,
    ListingPage,
    ResalePolicyIn,
    ResalePolicyOut,
    SellOrderOut,
    SellOrderRequest,
    UnsignedTransactionOut,
)
from backend.schemas import MAX_ID, IdPath

router = APIRouter(tags=["resale"])

register_problem(ListingNotFound, 404, "listing-not-found", "Listing not found")
register_problem(TicketNotFound, 404, "ticket-not-found", "Ticket not found")
register_problem(NotTicketHolder, 403, "not-ticket-holder", "Not the ticket's holder")
register_problem(NotListingSeller, 403, "not-listing-seller", "Not the listing's seller")
register_problem(HolderNotConfirmed, 409, "holder-not-confirmed", "Ticket moved on chain")
register_problem(
    SignatureNotByHolder, 422, "signature-not-by-holder", "Sell order not signed by the holder"
)
register_problem(PriceAboveCap, 422, "price-above-cap", "Price above the resale cap")
register_problem(InvalidListing, 422, "invalid-listing", "Sell order can't be listed")
register_problem(StaleSellOrder, 409, "stale-sell-order", "Sell order's nonce is not current")
register_problem(TicketNotResellable, 409, "ticket-not-resellable", "Ticket can't be resold")
register_problem(ResaleClosed, 409, "resale-closed", "Resale is closed")
register_problem(OwnListing, 409, "own-listing", "That listing is your own")
register_problem(ListingNotLive, 409, "listing-not-live", "Listing is not on the market")
register_problem(InvalidCursor, 422, "invalid-cursor", "Page cursor is not valid")

DELIST_NOTE = (
    "The listing is off the market here. The order you signed stays fillable on chain by "
    "anyone who has it until its nonce moves (send cancel_transaction from your wallet, or "
    "move the ticket) or its deadline passes."
)
_SELLER = problem_responses(401, 403, 404, 409, 422, 503)


def _tx_out(tx: UnsignedTx) -> UnsignedTransactionOut:
    return UnsignedTransactionOut(
        to=tx["to"], data=tx["data"], value=hex(tx["value"]), chainId=tx["chainId"]
    )


def _listing_out(view: resale.ListingView, wei_per_cent: int, now: datetime) -> ListingOut:
    listing, event, tier = view.listing, view.event, view.tier
    amounts = resale.money(event, tier, listing.price_gwei * resale.GWEI)
    return ListingOut(
        id=listing.id,
        event_id=event.id,
        chain_id=event.chain_id,
        contract_address=event.contract_address,
        tier_id=tier.id,
        tier_name=tier.name,
        seat=view.seat,
        token_id=listing.token_id,
        seller_address=listing.seller_address,
        face_price_wei=str(amounts.face_wei),
        price_wei=str(amounts.price_wei),
        cap_wei=str(amounts.cap_wei),
        resale_cap_bps=event.resale_cap_bps,
        royalty_bps=event.royalty_bps,
        royalty_wei=str(amounts.royalty_wei),
        seller_receives_wei=str(amounts.seller_receives_wei),
        price_cents=resale.price_cents(amounts.price_wei, wei_per_cent),
        currency=tier.currency,
        deadline=listing.deadline,
        expires_at=datetime.fromtimestamp(listing.deadline, UTC),
        status=resale.shown_status(listing, now),
        status_reason=listing.status_reason,
        created_at=listing.created_at,
        buyer_address=listing.buyer_address,
        sold_tx_hash=listing.sold_tx_hash,
    )


def _jsonable(typed_data: dict[str, Any]) -> dict[str, Any]:
    # uint256 values as decimal strings: JavaScript numbers lose wei amounts past 2**53.
    message = {
        key: str(value) if isinstance(value, int) else value
        for key, value in typed_data["message"].items()
    }
    return {**typed_data, "message": message}


@router.post("/listings/sell-order", response_model=SellOrderOut, responses=_SELLER)
def sell_order(body: SellOrderRequest, runtime: RuntimeDep, wallet: WalletDep) -> SellOrderOut:
    """The ticket's holder: the EIP-712 SellOrder to sign for this price, carrying the
    ticket's sale nonce as the chain has it now, and what the listing would show. Refused with
    the reason it could not be listed (not the holder, price above the cap, resale closed ...),
    so a wallet never asks for a signature that would be refused. Signing costs no gas."""
    now = utcnow()
    terms = resale.SellOrderTerms(body.event_id, body.token_id, int(body.price_wei), body.deadline)
    with transaction(runtime.sessions) as session:
        draft = resale.draft_sell_order(session, runtime.chain, wallet, terms, now)
        listing = _listing_out(draft.view, runtime.settings.wei_per_cent, now)
    listing.id, listing.created_at = None, None
    return SellOrderOut(typed_data=_jsonable(draft.typed_data), listing=listing)


@router.post("/listings", response_model=ListingOut, status_code=201, responses=_SELLER)
def create_listing(body: ListingCreate, runtime: RuntimeDep, wallet: WalletDep) -> ListingOut:
    """The ticket's holder: list it under the SellOrder they signed. Checked before anything
    is stored: the caller and the signer are the holder (as the indexer recorded and as the
    chain has it), the nonce is the ticket's current one, the price is at most face x cap, the
    ticket was neither checked in nor refunded, the event is not cancelled, its organizer's
    resale window is open and the deadline is in the future, within it. A listing of the
    ticket already on the market is replaced (listing.cancelled, then listing.created)."""
    now = utcnow()
    terms = resale.SellOrderTerms(body.event_id, body.token_id, int(body.price_wei), body.deadline)
    with transaction(runtime.sessions) as session:
        view = resale.create_listing(
            session, runtime.chain, wallet, terms, body.nonce, body.signature, now
        )
        return _listing_out(view, runtime.settings.wei_per_cent, now)


@router.get(
    "/events/{event_id}/listings",
    response_model=ListingPage,
    responses=problem_responses(404, 422),
)
def browse(
    event_id: IdPath,
    runtime: RuntimeDep,
    tier_id: Annotated[int | None, Query(gt=0, le=MAX_ID, description="Only this tier")] = None,
    max_price_wei: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,30}$", description="Decimal wei, inclusive")
    ] = None,
    sort: resale.Sort = "price",
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ListingPage:
    """Public: the event's tickets on the resale market, cheapest first (``sort=price``) or
    newest first, a page at a time. A listing past its deadline, sold or void is never shown."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        page, next_cursor = resale.browse(
            session,
            event_id,
            tier_id=tier_id,
            max_price_wei=None if max_price_wei is None else int(max_price_wei),
            sort=sort,
            cursor=cursor,
            limit=limit,
            now=now,
        )
        listings = [_listing_out(v, runtime.settings.wei_per_cent, now) for v in page]
    return ListingPage(listings=listings, next_cursor=next_cursor)


@router.get(
    "/listings/{listing_id}", response_model=ListingOut, responses=problem_responses(404, 422)
)
def get_listing(listing_id: IdPath, runtime: RuntimeDep) -> ListingOut:
    """Public: one listing, in whatever state it is."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        return _listing_out(
            resale.get_listing(session, listing_id), runtime.settings.wei_per_cent, now
        )


@router.delete("/listings/{listing_id}", response_model=DelistOut, responses=_SELLER)
def delist(listing_id: IdPath, runtime: RuntimeDep, wallet: WalletDep) -> DelistOut:
    """The listing's seller: take it off the market, at once. **The signed order stays
    fillable on chain** by anyone who has it until its nonce moves or its deadline passes:
    send the returned ``cancel_transaction`` (cancelSellOrders) from your wallet to void it."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        view, tx = resale.delist(session, runtime.chain, wallet, listing_id, now)
        out = _listing_out(view, runtime.settings.wei_per_cent, now)
    return DelistOut(listing=out, cancel_transaction=_tx_out(tx), note=DELIST_NOTE)


@router.post("/listings/{listing_id}/buy", response_model=BuyOut, responses=_SELLER)
def buy(listing_id: IdPath, body: BuyRequest, runtime: RuntimeDep, wallet: WalletDep) -> BuyOut:
    """Buy a listing. ``crypto``: the unsigned buyResale transaction for your wallet, paying
    exactly the price; the ticket is yours, and the listing sold, when the indexer sees the
    sale on chain. The seller can't buy their own listing."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        view, tx = resale.buy_with_ether(session, runtime.chain, wallet, listing_id, now)
        out = _listing_out(view, runtime.settings.wei_per_cent, now)
    return BuyOut(listing=out, transaction=_tx_out(tx), total_wei=str(tx["value"]))


@router.get("/me/listings", response_model=ListingPage, responses=problem_responses(401, 422))
def my_listings(
    runtime: RuntimeDep,
    wallet: WalletDep,
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ListingPage:
    """Your listings, newest first, in every state (live, sold, void, expired, delisted)."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        before = None if cursor is None else resale.id_cursor(cursor)
        found = resale.listings_of(session, wallet, before_id=before, limit=limit)
        listings = [_listing_out(v, runtime.settings.wei_per_cent, now) for v in found]
    next_cursor = str(found[-1].listing.id) if len(found) == limit else None
    return ListingPage(listings=listings, next_cursor=next_cursor)


def _policy_out(event: Any, now: datetime) -> ResalePolicyOut:
    closes = resale.window_closes_at(event)
    return ResalePolicyOut(
        event_id=event.id,
        enabled=event.resale_enabled,
        closes_before_seconds=event.resale_closes_before_seconds,
        closes_at=closes,
        open=resale.is_open(event, now),
        resale_cap_bps=event.resale_cap_bps,
        royalty_bps=event.royalty_bps,
        transfers_locked=event.transfers_locked,
    )


@router.get(
    "/events/{event_id}/resale",
    response_model=ResalePolicyOut,
    responses=problem_responses(404, 422),
)
def resale_policy(event_id: IdPath, runtime: RuntimeDep) -> ResalePolicyOut:
    """Public: the event's resale policy, cap and royalty."""
    with transaction(runtime.sessions) as session:
        return _policy_out(get_event(session, event_id), utcnow())


@router.put(
    "/admin/events/{event_id}/resale",
    response_model=ResalePolicyOut,
    responses=problem_responses(401, 403, 404, 422),
)
def set_resale_policy(
    event_id: IdPath, body: ResalePolicyIn, runtime: RuntimeDep, principal: PrincipalDep
) -> ResalePolicyOut:
    """The event's organizer (or an admin): turn resale on or off, and choose how long before
    the start it closes. Turning it off takes every listing off the market (listing.cancelled);
    their signed orders stay fillable on chain until their deadlines."""
    with transaction(runtime.sessions) as session:
        event = resale.set_policy(
            session,
            principal,
            event_id,
            enabled=body.enabled,
            closes_before_seconds=body.closes_before_seconds,
        )
        return _policy_out(event, utcnow())
