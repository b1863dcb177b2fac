"""The card rail of the resale market in these tests: a holder who bought by card, a card buyer
reserving and paying a listing in the sandbox, and what the chain and the database say after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from web3 import Web3

from backend.chain.client import ChainClient
from backend.db.engine import transaction
from backend.demo import SUCCESS_CARD, FairtixClient
from backend.payments.models import SandboxPaymentIntent
from backend.resale.models import CardPurchase, Listing, Payout
from backend.runtime import Runtime
from backend.sales.models import Order
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.resale.market import Holding

WEI_PER_CENT = 3_000_000_000_000  # the settings' default


def card_holding(
    client: TestClient,
    worker: Worker,
    admin: LocalAccount,
    quantity: int = 1,
    **event_fields: Any,
) -> Holding:
    """The admin organizes an event; a buyer pays ``quantity`` tickets by card in the sandbox
    and the worker mints them into the buyer's wallet."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=5, **event_fields)
    holder = admitted_buyer(client, event["id"])
    order = holder.place_order(event["id"], event["tiers"][0]["id"], quantity)
    intent = holder.checkout_card(order["id"])["payment_intent"]
    holder.pay_in_sandbox(intent, SUCCESS_CARD)
    drain(worker)
    final = holder.order(order["id"])
    assert final["status"] == "fulfilled", final
    return Holding(organizer, event, holder, final["token_ids"])


def buy_by_card(api: FairtixClient, listing_id: int) -> dict[str, Any]:
    result: dict[str, Any] = api._call(
        "POST", f"/listings/{listing_id}/buy", json={"method": "card"}
    )
    return result


def pay(api: FairtixClient, bought: dict[str, Any]) -> None:
    api.pay_in_sandbox(bought["payment_intent"], SUCCESS_CARD)


def owner_on_chain(chain: ChainClient, event: dict[str, Any], token_id: int) -> str:
    return chain.owner_of(event["contract_address"], token_id).lower()


def w3_of(chain: ChainClient) -> Web3:
    w3: Web3 = chain._w3
    return w3


def purchases(runtime: Runtime) -> list[CardPurchase]:
    with transaction(runtime.sessions) as session:
        found = list(session.scalars(select(CardPurchase).order_by(CardPurchase.id)))
        session.expunge_all()
        return found


def payouts(runtime: Runtime) -> list[Payout]:
    with transaction(runtime.sessions) as session:
        found = list(session.scalars(select(Payout).order_by(Payout.id)))
        session.expunge_all()
        return found


def listing(runtime: Runtime, listing_id: int) -> Listing:
    with transaction(runtime.sessions) as session:
        found = session.get(Listing, listing_id)
        assert found is not None
        session.expunge(found)
        return found


def refunded_cents(runtime: Runtime, intent_id: str) -> int:
    """What the sandbox gave back on a card payment so far."""
    with transaction(runtime.sessions) as session:
        intent = session.get(SandboxPaymentIntent, intent_id)
        assert intent is not None
        return int(intent.amount_refunded)


def order_intent(runtime: Runtime, buyer: str) -> str:
    """The card payment of the primary order ``buyer`` placed."""
    with transaction(runtime.sessions) as session:
        intent = session.scalars(
            select(Order.payment_intent_id).where(Order.buyer_address == buyer.lower())
        ).one()
        assert intent is not None
        return intent


@dataclass(frozen=True)
class Credits:
    organizer: int
    relayer: int


def credits(chain: ChainClient, event: dict[str, Any]) -> Credits:
    contract = event["contract_address"]
    return Credits(
        organizer=chain.credit_of(contract, event["organizer_address"]),
        relayer=chain.credit_of(contract, chain.signer_address),
    )
