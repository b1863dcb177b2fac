"""What a seller's and a buyer's wallets do on the resale market in these tests: hold tickets
bought with ether, sign the sell order the API hands out, list, buy. Plain functions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from web3 import Web3

from backend.chain.client import ChainClient
from backend.demo import ApiError, FairtixClient
from backend.notify.models import WebhookDelivery, WebhookEndpoint
from backend.runtime import Runtime
from backend.worker import Worker
from tests.helpers import admitted_buyer, drain, make_event, signed_in
from tests.payments.wallets import buy, fund

GWEI = 10**9


@dataclass
class Holding:
    organizer: FairtixClient
    event: dict[str, Any]
    holder: FairtixClient
    token_ids: list[int]

    @property
    def face_wei(self) -> int:
        return int(self.event["tiers"][0]["price_wei"])


def holding(
    client: TestClient,
    worker: Worker,
    chain: ChainClient,
    admin: LocalAccount,
    quantity: int = 1,
    **event_fields: Any,
) -> Holding:
    """The admin organizes an event; a buyer pays ``quantity`` tickets with ether and the
    indexer records them in the buyer's wallet."""
    organizer = signed_in(client, admin)
    event = make_event(organizer, supply=5, **event_fields)
    holder = admitted_buyer(client, event["id"])
    order = holder.place_order(event["id"], event["tiers"][0]["id"], quantity)
    payment = holder.checkout_crypto(order["id"])["crypto"]
    w3: Web3 = chain._w3
    fund(w3, holder.wallet.address)
    buy(w3, holder.wallet, payment["transaction"])
    drain(worker)
    final = holder.order(order["id"])
    assert final["status"] == "fulfilled"
    return Holding(organizer, event, holder, final["token_ids"])


def sign_typed(wallet: LocalAccount, typed_data: dict[str, Any]) -> str:
    """What a wallet's eth_signTypedData_v4 does with the API's document (uint256s arrive as
    decimal strings)."""
    uints = {f["name"] for f in typed_data["types"]["SellOrder"] if f["type"] == "uint256"}
    message = {k: int(v) if k in uints else v for k, v in typed_data["message"].items()}
    signable = encode_typed_data(full_message={**typed_data, "message": message})
    return "0x" + bytes(wallet.sign_message(signable).signature).hex().removeprefix("0x")


def sell_order(
    api: FairtixClient, event_id: int, token_id: int, price_wei: int, **extra: Any
) -> dict[str, Any]:
    body = {"event_id": event_id, "token_id": token_id, "price_wei": str(price_wei), **extra}
    result: dict[str, Any] = api._call("POST", "/listings/sell-order", json=body)
    return result


def listing_body(
    typed_data: dict[str, Any], signature: str, event_id: int, **override: Any
) -> dict[str, Any]:
    message = typed_data["message"]
    return {
        "event_id": event_id,
        "token_id": int(message["tokenId"]),
        "price_wei": message["price"],
        "nonce": int(message["nonce"]),
        "deadline": int(message["deadline"]),
        "signature": signature,
        **override,
    }


def list_ticket(
    api: FairtixClient, event_id: int, token_id: int, price_wei: int, **extra: Any
) -> dict[str, Any]:
    """Ask for the sell order, sign it with the holder's wallet, list it."""
    typed = sell_order(api, event_id, token_id, price_wei, **extra)["typed_data"]
    # The payout rail and a named buyer are part of the signed order: listed as signed.
    terms = {key: extra[key] for key in ("payout", "buyer") if key in extra}
    body = listing_body(typed, sign_typed(api.wallet, typed), event_id, **terms)
    result: dict[str, Any] = api._call("POST", "/listings", json=body)
    return result


def problem(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    """The status and problem type slug a refused API call answered with."""
    try:
        call(*args, **kwargs)
    except ApiError as exc:
        assert exc.body["status"] == exc.status
        return exc.status, str(exc.body["type"]).rsplit("/", 1)[-1]
    raise AssertionError("the call succeeded")


def subscribe(runtime: Runtime, organizer: str, kinds: list[str]) -> None:
    from backend.db.engine import transaction

    with transaction(runtime.sessions) as session:
        session.add(
            WebhookEndpoint(
                owner_address=organizer.lower(),
                url="https://hooks.example.org/fairtix",
                events=kinds,
                secret_salt="00",
            )
        )


def notifications(runtime: Runtime, kind: str) -> list[dict[str, Any]]:
    from backend.db.engine import transaction

    with transaction(runtime.sessions) as session:
        rows = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.kind == kind).order_by(WebhookDelivery.id)
        ).all()
        return [json.loads(row.body)["data"] for row in rows]
