"""Cancellation follows the ticket onto the card rail: a ticket resold to a card buyer (its
seller paid back on their own card) and then cancelled refunds the card buyer's resale payment,
once; the seller's card is not refunded again for a ticket they no longer hold."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.chain.client import ChainClient
from backend.db.engine import transaction
from backend.runtime import Runtime
from backend.sales.models import HolderRefund
from backend.worker import Worker
from tests.helpers import drain, signed_in
from tests.resale.cardmarket import (
    buy_by_card,
    card_holding,
    order_intent,
    pay,
    payouts,
    refunded_cents,
)
from tests.resale.market import list_ticket
from tests.sales.test_cancellation import cancel
from tests.sales.test_cancellation_follows_ticket import settle

pytestmark = pytest.mark.db


def test_a_ticket_resold_by_card_then_cancelled_refunds_the_card_buyer_once(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin)
    event, token_id, seller = market.event, market.token_ids[0], market.holder
    listed = list_ticket(seller, event["id"], token_id, market.face_wei, payout="card")
    buyer = signed_in(client)
    bought = buy_by_card(buyer, listed["id"])
    pay(buyer, bought)
    drain(worker)
    [payout] = payouts(runtime)
    assert payout.status == "paid"

    cancel(market.organizer, event["id"])
    settle(runtime, worker)

    with transaction(runtime.sessions) as session:
        refunds = session.scalars(select(HolderRefund).order_by(HolderRefund.id)).all()
        assert [(r.holder_address, r.rail, r.status, r.payment_intent_id) for r in refunds] == [
            (buyer.wallet.address.lower(), "card", "paid", bought["payment_intent"]["id"])
        ]
    # The card buyer's resale payment back in full (it paid the face price); the seller's card
    # keeps only its payout, refunded once, for the ticket it sold.
    assert (
        refunded_cents(runtime, bought["payment_intent"]["id"])
        == bought["purchase"]["amount_cents"]
    )
    assert (
        refunded_cents(runtime, order_intent(runtime, seller.wallet.address))
        == (listed["payout_cents"])
    )
