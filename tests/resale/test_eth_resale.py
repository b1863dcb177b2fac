"""The resale market's ether rail on eth-tester, through the API and the indexer: a holder lists
a ticket by signing the sell order the API hands out, a buyer finds it, buys it with the
returned transaction, and the indexer records the sale; and what keeps listings true (delist,
expiry, a transfer, a check-in, cancellation)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from web3 import Web3

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.db.engine import transaction
from backend.resale.models import Listing
from backend.runtime import Runtime
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.helpers import drain, signed_in
from tests.payments.wallets import buy, fund, sign_checkout_tx
from tests.resale.market import (
    GWEI,
    holding,
    list_ticket,
    listing_body,
    notifications,
    problem,
    sign_typed,
    subscribe,
)
from tests.sales.onchain import revert_of, transfer, transfer_tx

pytestmark = pytest.mark.db

MARKET_KINDS = ["listing.created", "listing.cancelled", "ticket.resold"]


def listing_statuses(runtime: Runtime) -> list[str]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(Listing.status).order_by(Listing.id)))


def holder_of(runtime: Runtime, token_id: int) -> str:
    with transaction(runtime.sessions) as session:
        return session.scalars(
            select(Ticket.owner_address).where(Ticket.token_id == token_id)
        ).one()


def test_a_ticket_listed_by_its_holder_is_bought_with_ether_and_the_indexer_records_the_sale(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    subscribe(runtime, admin.address, MARKET_KINDS)
    event, token_id = market.event, market.token_ids[0]
    cap_wei = market.face_wei * event["resale_cap_bps"] // 10_000
    price = cap_wei // GWEI * GWEI

    # The sell order to sign: EIP-712 typed data a wallet can sign as it is.
    draft = market.holder._call(
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(price)},
    )
    typed = draft["typed_data"]
    assert typed["primaryType"] == "SellOrder"
    assert typed["domain"]["verifyingContract"] == event["contract_address"]
    assert typed["message"]["nonce"] == "0"
    assert draft["listing"]["id"] is None

    listed = list_ticket(market.holder, event["id"], token_id, price)
    assert listed["status"] == "live"
    assert listed["price_wei"] == str(price)
    assert listed["cap_wei"] == str(cap_wei)
    royalty = price * event["royalty_bps"] // 10_000
    assert listed["royalty_wei"] == str(royalty)
    assert listed["seller_receives_wei"] == str(price - royalty)
    assert listed["face_price_wei"] == str(market.face_wei)
    assert listed["price_cents"] == -(-price // runtime.settings.wei_per_cent)
    assert listed["tier_name"] == "GA"
    assert listed["seat"]

    # Anyone can browse it.
    page = client.get(f"/events/{event['id']}/listings").json()
    assert [item["id"] for item in page["listings"]] == [listed["id"]]
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "live"

    buyer = signed_in(client)
    bought = buyer._call("POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"})
    assert bought["total_wei"] == str(price)
    assert int(bought["transaction"]["value"], 16) == price
    assert listing_statuses(runtime) == ["live"]  # nothing recorded until the chain says so

    w3: Web3 = chain._w3
    fund(w3, buyer.wallet.address)
    receipt = buy(w3, buyer.wallet, bought["transaction"])
    drain(worker)

    sold = client.get(f"/listings/{listed['id']}").json()
    assert sold["status"] == "sold"
    assert sold["buyer_address"] == buyer.wallet.address.lower()
    assert sold["sold_tx_hash"] == receipt["transactionHash"].to_0x_hex()
    assert holder_of(runtime, token_id) == buyer.wallet.address.lower()
    assert chain.owner_of(event["contract_address"], token_id) == buyer.wallet.address
    assert [t["token_id"] for t in buyer.my_tickets()["tickets"]] == [token_id]
    assert client.get(f"/events/{event['id']}/listings").json()["listings"] == []
    mine = market.holder._call("GET", "/me/listings")["listings"]
    assert [(item["id"], item["status"]) for item in mine] == [(listed["id"], "sold")]

    assert [n["listing_id"] for n in notifications(runtime, "listing.created")] == [listed["id"]]
    resold = notifications(runtime, "ticket.resold")
    assert [(n["listing_id"], n["price_wei"], n["royalty_wei"]) for n in resold] == [
        (listed["id"], str(price), str(royalty))
    ]
    report = market.organizer._call("GET", f"/admin/events/{event['id']}/sales")
    assert report["resale"] == {
        "resales": 1,
        "volume_wei": str(price),
        "royalties_wei": str(royalty),
        "on_market": 0,
    }
    # A sold listing can't be bought again.
    assert problem(
        buyer._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "listing-not-live")


def test_each_bad_listing_is_refused_with_its_problem_and_nothing_is_stored(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin, quantity=2)
    subscribe(runtime, admin.address, MARKET_KINDS)
    event, token_id = market.event, market.token_ids[0]
    cap_wei = market.face_wei * event["resale_cap_bps"] // 10_000
    price = cap_wei // GWEI * GWEI
    typed = market.holder._call(
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(price)},
    )["typed_data"]
    good = listing_body(typed, sign_typed(market.holder.wallet, typed), event["id"])
    stranger = signed_in(client)

    def refused(api: Any, body: dict[str, Any]) -> tuple[int, str]:
        return problem(api._call, "POST", "/listings", json=body)

    # Not the holder: a stranger posting the holder's own signed order.
    assert refused(stranger, good) == (403, "not-ticket-holder")
    # Signed by someone else than the holder.
    forged = listing_body(typed, sign_typed(stranger.wallet, typed), event["id"])
    assert refused(market.holder, forged) == (422, "signature-not-by-holder")
    # The signature covers the terms: another price is not what the holder signed.
    cheaper = {**good, "price_wei": str(price - GWEI)}
    assert refused(market.holder, cheaper) == (422, "signature-not-by-holder")
    # Above face x cap, at the sell-order step and at listing.
    above = cap_wei + GWEI
    assert problem(
        market.holder._call,
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(above)},
    ) == (422, "price-above-cap")
    assert refused(market.holder, {**good, "price_wei": str(above)}) == (422, "price-above-cap")
    # A nonce that isn't the ticket's current one, signed properly all the same.
    stale_typed = {**typed, "message": {**typed["message"], "nonce": "1"}}
    stale = listing_body(stale_typed, sign_typed(market.holder.wallet, stale_typed), event["id"])
    assert refused(market.holder, stale) == (409, "stale-sell-order")
    # A deadline in the past.
    past = int(time.time()) - 10
    past_typed = {**typed, "message": {**typed["message"], "deadline": str(past)}}
    late = listing_body(past_typed, sign_typed(market.holder.wallet, past_typed), event["id"])
    assert refused(market.holder, late) == (422, "invalid-listing")
    # A refunded ticket (as the indexer records a refund claim).
    with transaction(runtime.sessions) as session:
        other = session.scalars(select(Ticket).where(Ticket.token_id == market.token_ids[1])).one()
        other.refund_tx_hash = "0x" + "ab" * 32
    assert problem(
        market.holder._call,
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": market.token_ids[1], "price_wei": str(price)},
    ) == (409, "ticket-not-resellable")
    # Resale turned off by the organizer, then the window closed.
    policy = {"enabled": False, "closes_before_seconds": 0}
    market.organizer._call("PUT", f"/admin/events/{event['id']}/resale", json=policy)
    assert refused(market.holder, good) == (409, "resale-closed")
    closes_early = {"enabled": True, "closes_before_seconds": 30 * 86_400}
    market.organizer._call("PUT", f"/admin/events/{event['id']}/resale", json=closes_early)
    assert refused(market.holder, good) == (409, "resale-closed")
    assert problem(
        stranger._call,
        "PUT",
        f"/admin/events/{event['id']}/resale",
        json={"enabled": True, "closes_before_seconds": 0},
    ) == (403, "not-event-organizer")

    assert listing_statuses(runtime) == []
    assert notifications(runtime, "listing.created") == []

    # The policy back open, the good order lists.
    market.organizer._call(
        "PUT",
        f"/admin/events/{event['id']}/resale",
        json={"enabled": True, "closes_before_seconds": 0},
    )
    listed = market.holder._call("POST", "/listings", json=good)
    assert listed["status"] == "live"
    # Its seller can't buy it.
    assert problem(
        market.holder._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "own-listing")
    # A cancelled event: its listings are void, new ones refused.
    market.organizer._call("POST", f"/events/{event['id']}/cancel", json={"reason": "storm"})
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "void"
    assert refused(market.holder, good) == (409, "event-cancelled")
    assert problem(
        stranger._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "listing-not-live")
    assert [n["reason"] for n in notifications(runtime, "listing.cancelled")] == [
        "the event was cancelled"
    ]


def test_a_new_listing_replaces_the_old_and_browse_pages_by_price_and_age(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin, quantity=3)
    event = market.event
    cap = market.face_wei * event["resale_cap_bps"] // 10_000 // GWEI * GWEI
    prices = [cap, cap - 2 * GWEI, cap - GWEI]
    listed = [
        list_ticket(market.holder, event["id"], token, price)
        for token, price in zip(market.token_ids, prices, strict=True)
    ]
    # Listing the first ticket again replaces its listing.
    again = list_ticket(market.holder, event["id"], market.token_ids[0], cap - 3 * GWEI)
    assert client.get(f"/listings/{listed[0]['id']}").json()["status"] == "delisted"

    url = f"/events/{event['id']}/listings"
    first = client.get(url, params={"limit": 2}).json()
    assert [item["id"] for item in first["listings"]] == [again["id"], listed[1]["id"]]
    second = client.get(url, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["id"] for item in second["listings"]] == [listed[2]["id"]]
    assert second["next_cursor"] is None
    newest = client.get(url, params={"sort": "newest"}).json()
    assert [item["id"] for item in newest["listings"]] == [
        again["id"],
        listed[2]["id"],
        listed[1]["id"],
    ]
    cheap = client.get(url, params={"max_price_wei": str(cap - 2 * GWEI)}).json()
    assert [item["id"] for item in cheap["listings"]] == [again["id"], listed[1]["id"]]
    tier = event["tiers"][0]["id"]
    assert len(client.get(url, params={"tier_id": tier}).json()["listings"]) == 3
    assert client.get(url, params={"tier_id": tier + 1}).json()["listings"] == []
    bad = client.get(url, params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-cursor")
    assert client.get("/events/999/listings").status_code == 404


def test_delisting_takes_the_listing_off_at_once_and_returns_the_cancel_transaction(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    subscribe(runtime, admin.address, MARKET_KINDS)
    event, token_id = market.event, market.token_ids[0]
    price = market.face_wei
    listed = list_ticket(market.holder, event["id"], token_id, price)
    buyer = signed_in(client)
    # A buyer got the transaction before the seller delisted.
    early = buyer._call("POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"})

    stranger = signed_in(client)
    assert problem(stranger._call, "DELETE", f"/listings/{listed['id']}") == (
        403,
        "not-listing-seller",
    )
    delisted = market.holder._call("DELETE", f"/listings/{listed['id']}")
    assert delisted["listing"]["status"] == "delisted"
    assert "fillable on chain" in delisted["note"]
    assert client.get(f"/events/{event['id']}/listings").json()["listings"] == []
    assert problem(
        buyer._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "listing-not-live")
    # Delisting again answers the same.
    assert market.holder._call("DELETE", f"/listings/{listed['id']}")["listing"]["status"] == (
        "delisted"
    )

    # The seller's wallet sends cancelSellOrders: the signed order is void on chain too.
    w3: Web3 = chain._w3
    buy(w3, market.holder.wallet, delisted["cancel_transaction"])
    drain(worker)
    fund(w3, buyer.wallet.address)
    assert revert_of(chain, buyer.wallet, early["transaction"]) == "SellOrderInvalidated"
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "delisted"
    assert [n["status"] for n in notifications(runtime, "listing.cancelled")] == ["delisted"]


def test_a_listing_expires_at_its_deadline(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    event = market.event
    deadline = int(time.time()) + 2
    listed = list_ticket(
        market.holder, event["id"], market.token_ids[0], market.face_wei, deadline=deadline
    )
    assert listed["deadline"] == deadline
    while time.time() < deadline + 0.2:
        time.sleep(0.2)
    # Shown expired (and not on the market) before the worker's sweep records it.
    assert client.get(f"/listings/{listed['id']}").json()["status"] == "expired"
    assert client.get(f"/events/{event['id']}/listings").json()["listings"] == []
    buyer = signed_in(client)
    assert problem(
        buyer._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "listing-not-live")
    assert listing_statuses(runtime) == ["live"]
    worker.run_once()
    assert listing_statuses(runtime) == ["expired"]


def test_a_direct_transfer_voids_the_listing_and_the_new_holder_can_list(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin, transfers_locked=False)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    friend = signed_in(client)
    transfer(
        chain, event["contract_address"], market.holder.wallet, friend.wallet.address, token_id
    )
    drain(worker)

    voided = client.get(f"/listings/{listed['id']}").json()
    assert voided["status"] == "void"
    assert voided["status_reason"] == "the ticket moved on chain"
    assert client.get(f"/events/{event['id']}/listings").json()["listings"] == []
    # The old holder can't list it any more; the new one can.
    assert problem(
        market.holder._call,
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(market.face_wei)},
    ) == (403, "not-ticket-holder")
    relisted = list_ticket(friend, event["id"], token_id, market.face_wei)
    assert relisted["status"] == "live"


def test_new_events_lock_direct_transfers(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    assert market.event["transfers_locked"] is True
    policy = client.get(f"/events/{market.event['id']}/resale").json()
    assert policy["transfers_locked"] is True
    assert policy["open"] is True
    friend = signed_in(client)
    move = transfer_tx(
        chain,
        market.event["contract_address"],
        market.holder.wallet.address,
        friend.wallet.address,
        market.token_ids[0],
    )
    assert revert_of(chain, market.holder.wallet, move) == "TransfersLocked"


def test_a_check_in_marks_the_ticket_used_and_voids_its_listing(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin, quantity=2)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    w3: Web3 = chain._w3
    contract = event["contract_address"]
    scanner_role = Web3.keccak(text="SCANNER_ROLE")
    chain.set_role(contract, scanner_role, chain.signer_address, grant=True)
    ticket_event = w3.eth.contract(
        address=Web3.to_checksum_address(contract), abi=load_artifact("TicketEvent").abi
    )
    check_in = {
        "to": contract,
        # The holder the door admitted: the one who holds it.
        "data": ticket_event.encode_abi(
            "checkIn", args=[[token_id], [chain.owner_of(contract, token_id)]]
        ),
        "value": "0x0",
        "chainId": chain.chain_id,
    }
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(sign_checkout_tx(w3, chain._signer, check_in))
    )
    assert receipt["status"] == 1
    drain(worker)

    voided = client.get(f"/listings/{listed['id']}").json()
    assert voided["status"] == "void"
    assert voided["status_reason"] == "the ticket was checked in"
    with transaction(runtime.sessions) as session:
        used = session.scalars(select(Ticket).where(Ticket.token_id == token_id)).one()
        assert used.checkin_tx_hash == receipt["transactionHash"].to_0x_hex()
    assert problem(
        market.holder._call,
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(market.face_wei)},
    ) == (409, "ticket-not-resellable")


def test_sell_orders_cancelled_on_chain_void_the_live_listing(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    event, token_id = market.event, market.token_ids[0]
    listed = list_ticket(market.holder, event["id"], token_id, market.face_wei)
    # The seller's wallet cancels on chain without delisting here first.
    cancel = chain.cancel_sell_orders_transaction(event["contract_address"], token_id)
    buy(chain._w3, market.holder.wallet, {**cancel, "value": hex(cancel["value"])})
    drain(worker)

    voided = client.get(f"/listings/{listed['id']}").json()
    assert voided["status"] == "void"
    assert voided["status_reason"] == "its seller cancelled the ticket's sell orders on chain"
    # A new order must carry the moved nonce.
    typed = market.holder._call(
        "POST",
        "/listings/sell-order",
        json={"event_id": event["id"], "token_id": token_id, "price_wei": str(market.face_wei)},
    )["typed_data"]
    assert typed["message"]["nonce"] == "1"


def test_the_market_shows_nothing_once_the_organizer_closes_its_window(
    client: TestClient, worker: Worker, chain: ChainClient, admin: LocalAccount, runtime: Runtime
) -> None:
    market = holding(client, worker, chain, admin)
    event = market.event
    listed = list_ticket(market.holder, event["id"], market.token_ids[0], market.face_wei)
    url = f"/events/{event['id']}/listings"
    assert [item["id"] for item in client.get(url).json()["listings"]] == [listed["id"]]
    # The window now closes long before the listing's deadline: it can't be bought here.
    policy = {"enabled": True, "closes_before_seconds": 30 * 86_400}
    closed = market.organizer._call("PUT", f"/admin/events/{event['id']}/resale", json=policy)
    assert closed["open"] is False
    assert client.get(url).json() == {"listings": [], "next_cursor": None}
    buyer = signed_in(client)
    assert problem(
        buyer._call, "POST", f"/listings/{listed['id']}/buy", json={"method": "crypto"}
    ) == (409, "resale-closed")
