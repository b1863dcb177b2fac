"""HTTP routes for orders and checkout."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from backend.auth.schemas import ADDRESS_PATTERN
from backend.catalog.errors import EventCancelled, EventOver
from backend.catalog.schemas import EventCancel
from backend.catalog.service import get_event, managed_event, to_out
from backend.chain.client import ChainClient
from backend.chain.errors import ChainUnavailable
from backend.db.engine import transaction
from backend.deps import PrincipalDep, RuntimeDep, WalletDep
from backend.payments import crypto
from backend.payments.schemas import payment_intent_out
from backend.problems import ProblemDetails, problem_details, problem_responses, register_problem
from backend.resale import service as resale
from backend.resale.schemas import ResaleTotalsOut
from backend.runtime import Runtime
from backend.sales import cancellation, refunds, report
from backend.sales import service as sales
from backend.sales.errors import (
    IllegalTransition,
    OrderInProgress,
    OrderNotFound,
    OrderNotPayable,
    PaymentMethodConflict,
    QuantityNotAllowed,
    SaleNotOpen,
    SoldOut,
    TierNotFound,
)
from backend.sales.models import Order, OrderTransition
from backend.sales.schemas import (
    CheckoutOut,
    CheckoutRequest,
    CryptoPaymentOut,
    DisputeOut,
    EventCancelOut,
    EventOrdersOut,
    OrderCreate,
    OrderOut,
    OrderPage,
    RefundClaimOut,
    RefundOut,
    SalesReportOut,
    TierSalesOut,
    TransitionOut,
    UnsignedTransactionOut,
)
from backend.schemas import MAX_ID, IdPath
from backend.tickets.service import token_ids_by_order, token_ids_of

router = APIRouter(tags=["sales"], responses=problem_responses(401, 403, 404, 409, 422, 503))

register_problem(OrderNotFound, 404, "order-not-found", "Order not found")
register_problem(TierNotFound, 404, "tier-not-found", "Tier not found")
register_problem(SaleNotOpen, 409, "sale-not-open", "Not on sale")
register_problem(QuantityNotAllowed, 422, "quantity-not-allowed", "Quantity not allowed")
register_problem(SoldOut, 409, "sold-out", "Not enough tickets left")
register_problem(OrderInProgress, 409, "order-in-progress", "An order is already open")
register_problem(IllegalTransition, 409, "illegal-transition", "Order can't do that now")
register_problem(OrderNotPayable, 409, "order-not-payable", "Order can't be paid")
register_problem(PaymentMethodConflict, 409, "payment-method-conflict", "Order is paid another way")
register_problem(ChainUnavailable, 503, "chain-unavailable", "Chain node unavailable")
register_problem(EventCancelled, 409, "event-cancelled", "Event is cancelled")
register_problem(EventOver, 409, "event-over", "Event has ended")


def _out(session: Session, order: Order, chain: ChainClient) -> OrderOut:
    return _order_out(
        order,
        token_ids_of(session, order.id),
        [_transition_out(t) for t in sales.transitions_of(session, order.id)],
        _refund_out(session, order, chain),
    )


def _transition_out(step: OrderTransition) -> TransitionOut:
    return TransitionOut(
        from_status=step.from_status, to_status=step.to_status, cause=step.cause, at=step.at
    )


def _recorded(session: Session, step: OrderTransition | None) -> TransitionOut | None:
    """A transition added in this transaction, as the answer shows it: flushed first, for the
    time it was recorded at, and read before the transaction ends (the SQL waiting room's store
    expires what the session holds)."""
    if step is None:
        return None
    session.flush()
    return _transition_out(step)


def _order_out(
    order: Order,
    token_ids: list[int],
    transitions: list[TransitionOut],
    refund: RefundOut,
) -> OrderOut:
    return OrderOut(
        id=order.id,
        event_id=order.event_id,
        tier_id=order.tier_id,
        buyer_address=order.buyer_address,
        quantity=order.quantity,
        unit_price_cents=order.unit_price_cents,
        total_cents=order.quantity * order.unit_price_cents,
        currency=order.currency,
        status=order.status,
        hold_expires_at=order.hold_expires_at,
        payment_intent_id=order.payment_intent_id,
        mint_tx_hash=order.mint_tx_hash,
        token_ids=token_ids,
        failure_reason=order.failure_reason,
        created_at=order.created_at,
        transitions=transitions,
        refund=refund,
        dispute=_dispute_out(order),
    )


def _dispute_out(order: Order) -> DisputeOut | None:
    if order.dispute_status is None or order.disputed_at is None:
        return None
    return DisputeOut(
        status=order.dispute_status,
        reason=order.dispute_reason or "unspecified",
        disputed_at=order.disputed_at,
    )


def _refund_out(session: Session, order: Order, chain: ChainClient) -> RefundOut:
    view = refunds.refund_view(session, order)
    claims = []
    if view.claims:
        contract = get_event(session, order.event_id).contract_address
        unit_wei = (order.permit_unit_price_gwei or 0) * crypto.GWEI
        for claim in view.claims:
            tx = chain.claim_refund_transaction(contract, claim.token_id)
            claims.append(
                RefundClaimOut(
                    token_id=claim.token_id,
                    holder=claim.holder,
                    amount_wei=str(unit_wei),
                    transaction=UnsignedTransactionOut(
                        to=tx["to"], data=tx["data"], value=hex(tx["value"]), chainId=tx["chainId"]
                    ),
                )
            )
    return _refund_out_of(view, claims)


def _refund_out_of(view: refunds.RefundView, claims: list[RefundClaimOut]) -> RefundOut:
    return RefundOut(
        state=view.state,
        method=view.method,
        reason=view.reason,
        requested_at=view.due_at,
        refunded_at=view.refunded_at,
        tickets=view.tickets,
        claimed_token_ids=view.claimed_token_ids,
        claims=claims,
        resold_token_ids=view.resold_token_ids,
    )


@router.post("/orders", response_model=OrderOut, status_code=201)
async def place_order(body: OrderCreate, runtime: RuntimeDep, wallet: WalletDep) -> OrderOut:
    """Hold seats (queue admission required). The hold lasts as long as your admission.

    With ``checkout`` the payment starts in the same request, as POST /orders/{id}/checkout
    would start it, and the answer's ``checkout`` carries it. If the hold succeeds but the
    payment can't start, the answer is still 201 with the held order and ``checkout_problem``
    saying why; start paying later with POST /orders/{id}/checkout."""
    # async with one explicit hop: a plain-def route costs the on-sale's hottest request a
    # second thread-pool hop, for validating its response.
    return await run_in_threadpool(_hold, body, runtime, wallet)


def _hold(body: OrderCreate, runtime: Runtime, wallet: str) -> OrderOut:
    with transaction(runtime.sessions) as session:
        order, held = sales.place_order(session, body.event_id, body.tier_id, body.quantity, wallet)
    steps = [_transition_out(held)]
    paying: CheckoutOut | None = None
    refused: ProblemDetails | None = None
    if body.checkout is not None:
        # The hold is committed: whatever becomes of the payment, the buyer keeps the seats and
        # gets the order's id, to start paying again with POST /orders/{id}/checkout.
        try:
            paying, order, started = _start_payment_of_new_order(
                order, body.checkout.method, runtime, wallet
            )
        except Exception as exc:
            refused = problem_details(exc)
            if refused is None:
                raise
        else:
            steps += [started] if started is not None else []
    # Built after the commit from what this request wrote: a new hold has no tickets and no
    # refund, and the commit releases the tier's lock sooner without queries.
    no_refund = refunds.RefundView(refunds.NONE, refunds.method_of(order))
    out = _order_out(order, [], steps, _refund_out_of(no_refund, []))
    out.checkout, out.checkout_problem = paying, refused
    return out


def _start_payment_of_new_order(
    order: Order, method: Literal["card", "crypto"], runtime: Runtime, wallet: str
) -> tuple[CheckoutOut, Order, TransitionOut | None]:
    if method == "crypto":
        return _crypto_payment(order.id, runtime, wallet)
    # Just held in this request: open, unpaid and of a live event, so checkout's first read
    # has nothing to tell; its second transaction checks all of it again.
    amount = order.quantity * order.unit_price_cents
    paying, recorded, step = _start_card_payment(
        order.id, amount, order.currency, runtime, wallet, held=order
    )
    return paying, recorded or order, step


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: IdPath, runtime: RuntimeDep, wallet: WalletDep) -> OrderOut:
    with transaction(runtime.sessions) as session:
        return _out(session, sales.get_order(session, order_id, wallet), runtime.chain)


@router.get("/me/orders", response_model=OrderPage)
def my_orders(
    runtime: RuntimeDep,
    wallet: WalletDep,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="next_before_id of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> OrderPage:
    """Your orders, newest first, in every state, each as GET /orders/{id} shows it (payment,
    tickets, refund)."""
    with transaction(runtime.sessions) as session:
        found = sales.orders_of(session, wallet, before_id=before_id, limit=limit)
        orders = [_out(session, order, runtime.chain) for order in found]
    next_before = found[-1].id if len(found) == limit else None
    return OrderPage(orders=orders, next_before_id=next_before)


@router.post("/orders/{order_id}/cancel", response_model=OrderOut)
def cancel_order(order_id: IdPath, runtime: RuntimeDep, wallet: WalletDep) -> OrderOut:
    with transaction(runtime.sessions) as session:
        order = sales.get_order(session, order_id, wallet, for_update=True)
        sales.cancel_order(session, order)
        return _out(session, order, runtime.chain)


@router.post("/orders/{order_id}/checkout", response_model=CheckoutOut)
async def checkout(
    order_id: IdPath, body: CheckoutRequest, runtime: RuntimeDep, wallet: WalletDep
) -> CheckoutOut:
    """Start paying. ``card`` returns the configured provider's payment: a payment intent with a
    client secret (sandbox, Stripe), or a PayPal order with the approve_url to send the buyer to.
    The result arrives by webhook.

    ``crypto`` returns the EIP-712 purchase permit fairtix signed for the caller's wallet and the
    unsigned transaction that submits it with the exact price; the order is paid when the
    indexer sees the purchase at the configured confirmation depth. Repeating either returns the
    same payment; an order can't switch between them."""
    if body.method == "crypto":
        return await run_in_threadpool(_crypto_checkout, order_id, runtime, wallet)
    return await run_in_threadpool(_card_checkout, order_id, runtime, wallet)


def _card_checkout(order_id: int, runtime: Runtime, wallet: str) -> CheckoutOut:
    with transaction(runtime.sessions) as session:
        order, event = sales.get_order_and_event(session, order_id, wallet)
        sales.require_not_cancelled(event)
        if order.status not in sales.OPEN_STATUSES:
            raise OrderNotPayable(order.id, order.status)
        if order.payment_provider == sales.CRYPTO:
            raise PaymentMethodConflict(order.id, sales.CRYPTO, "card")
        amount, currency = order.quantity * order.unit_price_cents, order.currency
    return _start_card_payment(order_id, amount, currency, runtime, wallet)[0]


def _start_card_payment(
    order_id: int,
    amount: int,
    currency: str,
    runtime: Runtime,
    wallet: str,
    held: Order | None = None,
) -> tuple[CheckoutOut, Order | None, TransitionOut | None]:
    """Create the provider's payment and record it on the order; returns the checkout answer,
    the order as recorded, and its move to awaiting payment (None on a repeated checkout).

    ``held``: the order as this request held it, if it did; it is brought up to date and
    returned when the order moved without being read again. Without it, the order returned
    is None in that case."""
    cards = runtime.cards
    # The provider is called outside our transaction (it is another system); the idempotency
    # key makes a retried checkout return the same intent instead of charging twice.
    intent = cards.create_payment(
        amount, currency, {"order_id": str(order_id)}, idempotency_key=f"fairtix-order-{order_id}"
    )
    order: Order | None
    with transaction(runtime.sessions) as session:
        # Checked again in either path: the event may have been cancelled, or the order
        # moved on, while the provider answered.
        moved = sales.start_held_payment(session, order_id, wallet, cards.name, intent.id)
        if moved is not None:
            step: TransitionOut | None = TransitionOut(
                from_status=sales.HELD,
                to_status=sales.AWAITING_PAYMENT,
                cause=moved.cause,
                at=moved.at,
            )
            status = sales.AWAITING_PAYMENT
            order = held
            if order is not None:
                order.status, order.hold_expires_at = status, moved.hold_expires_at
                order.payment_provider, order.payment_intent_id = cards.name, intent.id
        else:
            order, event = sales.get_order_and_event(session, order_id, wallet, for_update=True)
            sales.require_not_cancelled(event)
            if order.status not in sales.OPEN_STATUSES:
                raise OrderNotPayable(order.id, order.status)
            if order.payment_provider == sales.CRYPTO:
                raise PaymentMethodConflict(order.id, sales.CRYPTO, "card")
            started = sales.start_payment(session, order, cards.name, intent.id)
            step = _recorded(session, started)
            status = order.status
    paying = CheckoutOut(
        order_id=order_id,
        status=status,
        payment_intent=payment_intent_out(cards.name, intent, runtime.settings.public_base_url),
    )
    return paying, order, step


def _crypto_checkout(order_id: int, runtime: Runtime, buyer: str) -> CheckoutOut:
    return _crypto_payment(order_id, runtime, buyer)[0]


def _crypto_payment(
    order_id: int, runtime: Runtime, buyer: str
) -> tuple[CheckoutOut, Order, TransitionOut | None]:
    """Sign the order's purchase permit; returns the checkout answer, the order as recorded,
    and its move to awaiting payment (None on a repeated checkout)."""
    with transaction(runtime.sessions) as session:
        order, event = sales.get_order_and_event(session, order_id, buyer, for_update=True)
        sales.require_not_cancelled(event)
        if order.status not in sales.OPEN_STATUSES:
            raise OrderNotPayable(order.id, order.status)
        if order.payment_provider not in (None, sales.CRYPTO):
            raise PaymentMethodConflict(order.id, order.payment_provider, sales.CRYPTO)
        payment = crypto.checkout(session, runtime.chain, order)
        step = _recorded(session, payment.started)
        status = order.status
    tx = payment.transaction
    paying = CheckoutOut(
        order_id=order_id,
        status=status,
        crypto=CryptoPaymentOut(
            typed_data=_jsonable(payment.typed_data),
            signature=payment.signature,
            transaction=UnsignedTransactionOut(
                to=tx["to"], data=tx["data"], value=hex(tx["value"]), chainId=tx["chainId"]
            ),
            total_wei=str(tx["value"]),
            deadline=payment.deadline,
        ),
    )
    return paying, order, step


def _jsonable(typed_data: dict[str, Any]) -> dict[str, Any]:
    # uint256 values as decimal strings: JavaScript numbers lose wei amounts past 2**53.
    message = {
        key: str(value) if isinstance(value, int) else value
        for key, value in typed_data["message"].items()
    }
    return {**typed_data, "message": message}


@router.get("/admin/events/{event_id}/sales", response_model=SalesReportOut)
def sales_report(event_id: IdPath, runtime: RuntimeDep, principal: PrincipalDep) -> SalesReportOut:
    """The event's organizer (or an admin): orders by status, tickets sold and money taken per
    tier, card refunds pending and done, chargebacks by status, and resales: how many, their
    volume and the royalties earned. Read live from the orders and listings."""
    with transaction(runtime.sessions) as session:
        sold = report.sales_report(session, managed_event(session, event_id, principal))
        resold = resale.resale_totals(session, event_id)
    return SalesReportOut(
        event_id=sold.event_id,
        tiers=[TierSalesOut(**vars(tier)) for tier in sold.tiers],
        tickets_sold=sum(tier.tickets_sold for tier in sold.tiers),
        orders_by_status=sold.orders_by_status,
        refunds_pending=sold.refunds_pending,
        refunds_done=sold.refunds_done,
        refunds_held_for_disputes=sold.refunds_held_for_disputes,
        disputes_by_status=sold.disputes_by_status,
        resale=ResaleTotalsOut(
            resales=resold.resales,
            volume_wei=str(resold.volume_wei),
            royalties_wei=str(resold.royalties_wei),
            on_market=resold.on_market,
        ),
    )


OrderStatus = Literal[
    "created", "held", "awaiting_payment", "paid", "minting", "fulfilled",
    "failed", "expired", "refunded", "cancelled",
]  # fmt: skip


@router.get("/admin/events/{event_id}/orders", response_model=EventOrdersOut)
def event_orders(
    event_id: IdPath,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    buyer: Annotated[
        str | None, Query(pattern=ADDRESS_PATTERN, description="Only this wallet's orders")
    ] = None,
    status: OrderStatus | None = None,
    disputed: Annotated[
        bool | None, Query(description="Only orders with (true) or without (false) a chargeback")
    ] = None,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> EventOrdersOut:
    """The event's organizer (or an admin): its orders, as their buyers see them, for support
    on the night: a fan's orders by wallet, the disputed ones, a status. In id order, a page at
    a time (``after_id``)."""
    with transaction(runtime.sessions) as session:
        found = report.event_orders(
            session,
            managed_event(session, event_id, principal),
            buyer=buyer,
            status=status,
            disputed=disputed,
            after_id=after_id,
            limit=limit,
        )
        # A page's tokens and transitions in two queries, not two per order.
        ids = [order.id for order in found]
        tokens = token_ids_by_order(session, ids)
        steps = sales.transitions_by_order(session, ids)
        orders = [
            _order_out(
                order,
                tokens.get(order.id, []),
                [_transition_out(t) for t in steps.get(order.id, [])],
                _refund_out(session, order, runtime.chain),
            )
            for order in found
        ]
    return EventOrdersOut(
        orders=orders, next_after_id=found[-1].id if len(found) == limit else None
    )


@router.post("/events/{event_id}/cancel", response_model=EventCancelOut)
def cancel_event(
    event_id: IdPath, body: EventCancel, runtime: RuntimeDep, principal: PrincipalDep
) -> EventCancelOut:
    """The event's organizer (or an admin): cancel the event. At once, open orders are cancelled
    and their seats released, paid card orders' refunds are queued, new orders and checkouts
    are refused, and the waiting room closes. The worker then cancels the ticket contract
    (every ticket becomes invalid; crypto buyers can claim their refund from escrow, see the
    order's ``refund``) and refunds the card payments through their provider. Organizers'
    ``event.cancelled`` webhooks go out."""
    with transaction(runtime.sessions) as session:
        event, settled = cancellation.cancel_event(session, event_id, principal, body.reason)
        out = to_out(event)
    cancellation.close_queue_soon(runtime.queue, event_id)
    return EventCancelOut(
        event=out,
        orders_cancelled=settled.orders_cancelled,
        card_refunds_queued=settled.card_refunds_queued,
        crypto_orders_claimable=settled.crypto_orders_claimable,
        card_orders_following_tickets=settled.card_orders_following_tickets,
    )
