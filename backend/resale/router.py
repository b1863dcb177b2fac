"""HTTP routes of the resale market: sell orders to sign, listings, browsing, delisting, buying
with ether, the organizer's resale policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from backend.catalog.service import get_event
from backend.chain.types import UnsignedTx
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep, WalletDep
from backend.payments.schemas import payment_intent_out
from backend.problems import Problem, problem_responses, register_problem
from backend.resale import cards as resale_cards
from backend.resale import payouts
from backend.resale import service as resale
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
from backend.resale.models import CardPurchase, Payout
from backend.resale.schemas import (
    BuyOut,
    BuyRequest,
    CardPurchaseOut,
    DelistOut,
    ListingCreate,
    ListingOut,
    ListingPage,
    PayoutOut,
    PayoutPage,
    ResalePolicyIn,
    ResalePolicyOut,
    SellOrderOut,
    SellOrderRequest,
    UnsignedTransactionOut,
)
from backend.runtime import Runtime
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
register_problem(ListingReserved, 409, "listing-reserved", "Listing reserved for a card buyer")
register_problem(NotListingBuyer, 403, "not-listing-buyer", "A private sale to another wallet")
register_problem(
    CardPayoutNotAllowed, 422, "card-payout-not-allowed", "Card payout not allowed for this ticket"
)
register_problem(
    CardPayoutTooHigh, 422, "card-payout-above-payment", "Card payout above what the card paid"
)
register_problem(CardRailUnavailable, 409, "card-rail-unavailable", "No card payments for resale")

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


def listing_out(view: resale.ListingView, wei_per_cent: int, now: datetime) -> ListingOut:
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
        payout=listing.payout_rail,
        payee_address=listing.payee_address,
        payout_cents=listing.payout_cents,
        named_buyer=listing.named_buyer,
        reserved_until=listing.reserved_until if listing.status == "reserved" else None,
    )


def _jsonable(typed_data: dict[str, Any]) -> dict[str, Any]:
    # uint256 values as decimal strings: JavaScript numbers lose wei amounts past 2**53.
    message = {
        key: str(value) if isinstance(value, int) else value
        for key, value in typed_data["message"].items()
    }
    return {**typed_data, "message": message}


def _json(out: BaseModel, status_code: int = 200) -> Response:
    # Serialized once here: returned as a model, FastAPI would validate it again against the
    # route's response_model, and for a sync route do so in a second hop to the threadpool
    # (a listing's two requests are the market's hot path).
    return Response(out.model_dump_json(), status_code, media_type="application/json")


def terms_of(body: SellOrderRequest | ListingCreate) -> resale.SellOrderTerms:
    return resale.SellOrderTerms(
        body.event_id, body.token_id, int(body.price_wei), body.deadline, body.payout, body.buyer
    )


def draft_out(draft: resale.Draft, wei_per_cent: int, now: datetime) -> SellOrderOut:
    listing = listing_out(draft.view, wei_per_cent, now)
    listing.id, listing.created_at = None, None
    return SellOrderOut(typed_data=_jsonable(draft.typed_data), listing=listing)


def draft_answer(runtime: Runtime, wallet: str, body: SellOrderRequest) -> SellOrderOut:
    now = utcnow()
    wei_per_cent = runtime.settings.wei_per_cent
    with transaction(runtime.sessions) as session:
        draft = resale.draft_sell_order(
            session, runtime.chain, wallet, terms_of(body), now, wei_per_cent=wei_per_cent
        )
        return draft_out(draft, wei_per_cent, now)


def listing_answer(runtime: Runtime, wallet: str, body: ListingCreate) -> ListingOut:
    now = utcnow()
    wei_per_cent = runtime.settings.wei_per_cent
    with transaction(runtime.sessions) as session:
        view = resale.create_listing(
            session,
            runtime.chain,
            wallet,
            terms_of(body),
            body.nonce,
            body.signature,
            now,
            wei_per_cent=wei_per_cent,
        )
        return listing_out(view, wei_per_cent, now)


@router.post("/listings/sell-order", response_model=SellOrderOut, responses=_SELLER)
def sell_order(body: SellOrderRequest, runtime: RuntimeDep, wallet: WalletDep) -> Response:
    """The ticket's holder: the EIP-712 SellOrder to sign for this price, carrying the
    ticket's sale nonce as the chain has it now, and what the listing would show. Refused with
    the reason it could not be listed (not the holder, price above the cap, resale closed ...),
    so a wallet never asks for a signature that would be refused. Signing costs no gas."""
    return _json(draft_answer(runtime, wallet, body))


@router.post("/listings", response_model=ListingOut, status_code=201, responses=_SELLER)
def create_listing(body: ListingCreate, runtime: RuntimeDep, wallet: WalletDep) -> Response:
    """The ticket's holder: list it under the SellOrder they signed. Checked before anything
    is stored: the caller and the signer are the holder (as the indexer recorded and as the
    chain has it), the nonce is the ticket's current one, the price is at most face x cap, the
    ticket was neither checked in nor refunded, the event is not cancelled, its organizer's
    resale window is open and the deadline is in the future, within it. A listing of the
    ticket already on the market is replaced (listing.cancelled, then listing.created)."""
    return _json(listing_answer(runtime, wallet, body), 201)


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
        listings = [listing_out(v, runtime.settings.wei_per_cent, now) for v in page]
    return ListingPage(listings=listings, next_cursor=next_cursor)


@router.get(
    "/listings/{listing_id}", response_model=ListingOut, responses=problem_responses(404, 422)
)
def get_listing(listing_id: IdPath, runtime: RuntimeDep) -> ListingOut:
    """Public: one listing, in whatever state it is."""
    now = utcnow()
    with transaction(runtime.sessions) as session:
        return listing_out(
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
        out = listing_out(view, runtime.settings.wei_per_cent, now)
    return DelistOut(listing=out, cancel_transaction=_tx_out(tx), note=DELIST_NOTE)


@router.post("/listings/{listing_id}/buy", response_model=BuyOut, responses=_SELLER)
def buy(listing_id: IdPath, body: BuyRequest, runtime: RuntimeDep, wallet: WalletDep) -> BuyOut:
    """Buy a listing. ``crypto``: the unsigned buyResale transaction for your wallet, paying
    exactly the price; the ticket is yours, and the listing sold, when the indexer sees the
    sale on chain. ``card``: the listing is reserved for you for the payment window (others
    get 409 listing-reserved) and the answer carries the card payment, in the event's currency;
    once it is paid fairtix settles the sale on chain for your wallet (GET
    /resale/purchases/{id} follows it), and refunds the card if the ticket went to someone
    else first. The seller can't buy their own listing."""
    if body.method == "card":
        return _buy_by_card(listing_id, runtime, wallet)
    now = utcnow()
    with transaction(runtime.sessions) as session:
        view, tx = resale.buy_with_ether(session, runtime.chain, wallet, listing_id, now)
        out = listing_out(view, runtime.settings.wei_per_cent, now)
    return BuyOut(listing=out, transaction=_tx_out(tx), total_wei=str(tx["value"]))


def _buy_by_card(listing_id: int, runtime: Runtime, wallet: str) -> BuyOut:
    now = utcnow()
    cards, settings = runtime.cards, runtime.settings
    with transaction(runtime.sessions) as session:
        held = resale_cards.reserve(
            session,
            wallet,
            listing_id,
            provider=cards.name,
            window=timedelta(seconds=settings.resale_reservation_seconds),
            wei_per_cent=settings.wei_per_cent,
            now=now,
        )
        listing = listing_out(held.view, settings.wei_per_cent, now)
    # The provider is another system: called outside our transaction, with an idempotency key.
    try:
        intent = cards.create_payment(
            held.amount_cents,
            held.currency,
            {"resale_purchase_id": str(held.purchase_id), "listing_id": str(listing_id)},
            idempotency_key=f"fairtix-resale-{held.purchase_id}",
        )
    except Exception as exc:
        with transaction(runtime.sessions) as session:
            resale_cards.abandon(session, held.purchase_id, f"payment not started: {exc}")
        raise
    with transaction(runtime.sessions) as session:
        purchase = resale_cards.record_intent(session, held.purchase_id, intent.id)
        out = _purchase_out(purchase)
    return BuyOut(
        listing=listing,
        purchase=out,
        payment_intent=payment_intent_out(cards.name, intent, settings.public_base_url),
    )


def _purchase_out(purchase: CardPurchase) -> CardPurchaseOut:
    return CardPurchaseOut(
        id=purchase.id,
        listing_id=purchase.listing_id,
        token_id=purchase.token_id,
        buyer_address=purchase.buyer_address,
        amount_cents=purchase.amount_cents,
        currency=purchase.currency,
        status=purchase.status,
        reserved_until=purchase.reserved_until,
        settle_tx_hash=purchase.settle_tx_hash,
        failure_reason=purchase.failure_reason,
        created_at=purchase.created_at,
        paid_at=purchase.paid_at,
        settled_at=purchase.settled_at,
        refunded_at=purchase.refunded_at,
    )


@router.get(
    "/resale/purchases/{purchase_id}",
    response_model=CardPurchaseOut,
    responses=problem_responses(401, 404, 422),
)
def card_purchase(purchase_id: IdPath, runtime: RuntimeDep, wallet: WalletDep) -> CardPurchaseOut:
    """Your card purchase of a listing: reserved, paid, settling, settled (the ticket is in
    your wallet), or failed / refunded / expired with the reason."""
    with transaction(runtime.sessions) as session:
        purchase = session.get(CardPurchase, purchase_id)
        if purchase is None or purchase.buyer_address != wallet.lower():
            raise Problem(
                404, "purchase-not-found", "Purchase not found", f"no purchase {purchase_id}"
            )
        return _purchase_out(purchase)


def _payout_out(payout: Payout) -> PayoutOut:
    return PayoutOut(
        id=payout.id,
        listing_id=payout.listing_id,
        event_id=payout.event_id,
        token_id=payout.token_id,
        rail=payout.rail,
        amount_wei=payout.amount_wei,
        amount_cents=payout.amount_cents,
        currency=payout.currency,
        status=payout.status,
        sold_tx_hash=payout.sold_tx_hash,
        created_at=payout.created_at,
        paid_at=payout.paid_at,
    )


@router.get("/me/payouts", response_model=PayoutPage, responses=problem_responses(401, 422))
def my_payouts(
    runtime: RuntimeDep,
    wallet: WalletDep,
    cursor: Annotated[
        str | None, Query(max_length=40, description="next_cursor of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> PayoutPage:
    """What you were paid for your resales, newest first: by which rail (ether credited on
    chain to withdraw, or back to your card), how much, when, and for which listing."""
    with transaction(runtime.sessions) as session:
        before = None if cursor is None else resale.id_cursor(cursor)
        found = payouts.payouts_of(session, wallet, before_id=before, limit=limit)
        out = [_payout_out(p) for p in found]
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return PayoutPage(payouts=out, next_cursor=next_cursor)


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
        listings = [listing_out(v, runtime.settings.wei_per_cent, now) for v in found]
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
