"""A scripted client of the API: what a browser dApp does, step by step.

Used by ``fairtix demo`` (against a running service) and by the end-to-end tests. It signs like a
browser wallet does: an EIP-4361 message, EIP-191 ``personal_sign``, with the buyer's own key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from backend.auth.siwe import SiweMessage

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINE_CARD = "4000 0000 0000 0002"


class ApiError(Exception):
    """Raised when the API answers with a problem+json error the script did not expect."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text}
        super().__init__(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}: "
            f"{body.get('detail', body)}"
        )
        self.status = response.status_code
        self.body = body


class FairtixClient:
    def __init__(self, http: httpx.Client, wallet: LocalAccount) -> None:
        self.http = http
        self.wallet = wallet
        self.token: str | None = None

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response.json() if response.content else None

    def siwe_message(self, nonce_info: dict[str, Any], now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        message = SiweMessage(
            scheme=None,
            domain=nonce_info["domain"],
            address=self.wallet.address,
            statement=nonce_info["statement"],
            uri=nonce_info["uri"],
            version="1",
            chain_id=int(nonce_info["chain_id"]),
            nonce=nonce_info["nonce"],
            issued_at=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            expiration_time=(now + timedelta(hours=1))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            not_before=None,
            request_id=None,
            resources=(),
        )
        return message.to_text()

    def personal_sign(self, text: str) -> str:
        signed = Account.sign_message(encode_defunct(text=text), self.wallet.key)
        signature: bytes = signed.signature
        return "0x" + signature.hex().removeprefix("0x")

    def sign_in(self) -> dict[str, Any]:
        nonce_info = self._call("POST", "/auth/nonce")
        text = self.siwe_message(nonce_info)
        session: dict[str, Any] = self._call(
            "POST", "/auth/verify", json={"message": text, "signature": self.personal_sign(text)}
        )
        self.token = session["token"]
        return session

    def create_event(self, name: str, tiers: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        now = datetime.now(UTC)
        body = {
            "name": name,
            "venue": fields.pop("venue", "Demo Hall"),
            "starts_at": fields.pop("starts_at", (now + timedelta(days=30)).isoformat()),
            "sale_opens_at": fields.pop("sale_opens_at", (now - timedelta(minutes=1)).isoformat()),
            "tiers": tiers,
            **fields,
        }
        result: dict[str, Any] = self._call("POST", "/admin/events", json=body)
        return result

    def join_queue(self, event_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/events/{event_id}/queue")
        return result

    def queue_status(self, event_id: int, token: str | None = None) -> dict[str, Any]:
        headers = {"X-Queue-Token": token} if token else {}
        result: dict[str, Any] = self._call("GET", f"/events/{event_id}/queue/me", headers=headers)
        return result

    def wait_admitted(self, event_id: int, timeout: float = 60) -> dict[str, Any]:
        return _poll(
            lambda: self.queue_status(event_id), lambda s: s["state"] == "admitted", timeout
        )

    def availability(self, event_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/events/{event_id}/availability")
        return result

    def place_order(
        self, event_id: int, tier_id: int, quantity: int, checkout: str | None = None
    ) -> dict[str, Any]:
        """Hold seats; with ``checkout`` ("card" or "crypto") start paying in the same request."""
        body: dict[str, Any] = {"event_id": event_id, "tier_id": tier_id, "quantity": quantity}
        if checkout is not None:
            body["checkout"] = {"method": checkout}
        result: dict[str, Any] = self._call("POST", "/orders", json=body)
        return result

    def checkout_card(self, order_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/orders/{order_id}/checkout", json={"method": "card"}
        )
        return result

    def checkout_crypto(self, order_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", f"/orders/{order_id}/checkout", json={"method": "crypto"}
        )
        return result

    def pay_in_sandbox(self, intent: dict[str, Any], card_number: str) -> dict[str, Any]:
        body = {"client_secret": intent["client_secret"], "card_number": card_number}
        result: dict[str, Any] = self._call(
            "POST", f"/sandbox/payment_intents/{intent['id']}/confirm", json=body
        )
        return result

    def order(self, order_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/orders/{order_id}")
        return result

    def wait_order(self, order_id: int, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
        return _poll(lambda: self.order(order_id), lambda o: o["status"] in statuses, timeout)

    def my_tickets(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/me/tickets")
        return result


def _poll(
    fetch: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def run_demo(
    base_url: str,
    organizer: LocalAccount,
    rpc_url: str | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Drive one buyer through the whole sale; returns what a buyer ends up holding."""
    from backend.chain.client import ChainClient, connect_rpc

    with httpx.Client(base_url=base_url, timeout=60) as http:
        health = http.get("/health").json()
        if health.get("status") != "ok":
            raise RuntimeError(f"the service is not healthy: {health}")
        say(f"[1/10] service is up on chain {health['chain']['chain_id']}")

        org = FairtixClient(http, organizer)
        org.sign_in()
        say(f"[2/10] organizer {organizer.address} signed in with Ethereum")
        event = org.create_event(
            f"fairtix demo night {datetime.now(UTC):%Y-%m-%d %H:%M:%S}",
            [{"name": "General Admission", "price_cents": 2500, "supply": 100}],
        )
        say(f"        event {event['id']} created; its TicketEvent is {event['contract_address']}")

        buyer_key = Account.create()
        buyer = FairtixClient(http, buyer_key)
        buyer.sign_in()
        say(f"[3/10] buyer {buyer_key.address} (fresh wallet) signed in")

        place = buyer.join_queue(event["id"])
        say(f"[4/10] joined the queue: state {place['state']}, {place['position']} ahead")
        admitted = buyer.wait_admitted(event["id"])
        if admitted["state"] != "admitted":
            raise RuntimeError(f"not admitted in time: {admitted}")
        say(f"[5/10] admitted until {admitted['admission_expires_at']}")

        tier = buyer.availability(event["id"])["tiers"][0]
        price = f"{tier['price_cents'] / 100:.2f} {tier['currency'].upper()}"
        say(f"[6/10] {tier['name']}: {tier['remaining']} of {tier['supply']} left at {price}")

        order = buyer.place_order(event["id"], tier["tier_id"], 1)
        say(f"[7/10] order {order['id']} holds 1 seat until {order['hold_expires_at']}")

        checkout = buyer.checkout_card(order["id"])
        intent = checkout["payment_intent"]
        paid = buyer.pay_in_sandbox(intent, SUCCESS_CARD)
        say(f"[8/10] paid with test card {SUCCESS_CARD}: intent {paid['id']} {paid['status']}")

        final = buyer.wait_order(order["id"], {"fulfilled", "failed"}, timeout=120)
        if final["status"] != "fulfilled":
            raise RuntimeError(
                f"order did not complete: {final['status']} {final['failure_reason']}"
            )
        say(f"[9/10] order fulfilled: tokens {final['token_ids']} in tx {final['mint_tx_hash']}")

        ticket = buyer.my_tickets()["tickets"][0]
        metadata_path = "/ipfs/" + ticket["metadata_uri"].removeprefix("ipfs://")
        fetched = http.get(metadata_path)
        fetched.raise_for_status()
        onchain_uri = None
        if rpc_url:
            reader = ChainClient(connect_rpc(rpc_url), Account.create())
            onchain_uri = reader.token_uri(ticket["contract_address"], ticket["token_id"])
        say(f"[10/10] tokenURI {onchain_uri or ticket['metadata_uri']}")
        say(f"        resolves through GET {metadata_path}: {fetched.json()['name']!r}")
        say("")
        say(f"token id:     {ticket['token_id']}")
        say(f"tx hash:      {ticket['tx_hash']}")
        say(f"metadata URI: {ticket['metadata_uri']}")
        return {"ticket": ticket, "metadata": fetched.json(), "onchain_uri": onchain_uri}
