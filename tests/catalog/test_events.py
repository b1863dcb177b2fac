"""Creating and reading events: validation, roles, and the deployed contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from backend.catalog.models import Event
from backend.catalog.service import default_symbol, event_badge_svg
from backend.chain.client import ChainClient
from backend.chain.errors import TransactionFailed
from backend.runtime import Runtime
from tests.helpers import count, signed_in

pytestmark = pytest.mark.db


def event_body(**overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    body: dict[str, object] = {
        "name": "Catalog night",
        "starts_at": (now + timedelta(days=10)).isoformat(),
        "sale_opens_at": (now + timedelta(days=1)).isoformat(),
        "tiers": [{"name": "GA", "price_cents": 1500, "supply": 10}],
    }
    body.update(overrides)
    return body


def test_organizer_creates_an_event_with_its_own_contract(
    client: TestClient, admin: LocalAccount, chain: ChainClient
) -> None:
    organizer = signed_in(client)
    admin_api = signed_in(client, admin)
    granted = client.post(
        "/admin/roles",
        json={"address": organizer.wallet.address, "role": "organizer"},
        headers={"Authorization": f"Bearer {admin_api.token}"},
    )
    assert granted.status_code == 201 and "organizer" in granted.json()["roles"]
    created = client.post(
        "/admin/events", json=event_body(), headers={"Authorization": f"Bearer {organizer.token}"}
    )
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["symbol"] == "CATALOGN"
    assert event["organizer_address"] == organizer.wallet.address.lower()
    assert chain.event_address(event["chain_event_id"]) == event["contract_address"]
    assert client.get(f"/events/{event['id']}").json() == event
    assert [e["id"] for e in client.get("/events").json()] == [event["id"]]
    availability = client.get(f"/events/{event['id']}/availability").json()
    assert availability["on_sale"] is False and availability["tiers"][0]["remaining"] == 10


def test_revoked_organizer_can_no_longer_create_events(
    client: TestClient, admin: LocalAccount, runtime: Runtime
) -> None:
    organizer = signed_in(client)
    admin_headers = {"Authorization": f"Bearer {signed_in(client, admin).token}"}
    grant = {"address": organizer.wallet.address, "role": "organizer"}
    assert client.post("/admin/roles", json=grant, headers=admin_headers).status_code == 201
    path = f"/admin/roles/{organizer.wallet.address}/organizer"
    assert client.delete(path, headers=admin_headers).status_code == 204
    refused = client.post(
        "/admin/events", json=event_body(), headers={"Authorization": f"Bearer {organizer.token}"}
    )
    assert refused.status_code == 403
    assert count(runtime, Event) == 0


def test_only_admins_grant_roles(client: TestClient) -> None:
    buyer = signed_in(client)
    response = client.post(
        "/admin/roles",
        json={"address": buyer.wallet.address, "role": "organizer"},
        headers={"Authorization": f"Bearer {buyer.token}"},
    )
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden")


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"sale_opens_at": (datetime.now(UTC) + timedelta(days=20)).isoformat()}, 422),
        ({"starts_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}, 422),
        ({"tiers": [{"name": "A", "price_cents": 1, "supply": 1}] * 2}, 422),
        ({"tiers": []}, 422),
        ({"tiers": [{"name": "A", "price_cents": -1, "supply": 1}]}, 422),
        ({"starts_at": "2030-01-01T00:00:00"}, 422),  # no timezone: ambiguous
        ({"symbol": "lower"}, 422),
        # On-chain terms the contract would refuse are refused before any deployment.
        ({"tiers": [{"name": "A", "price_cents": 1, "supply": 1, "price_wei": 10**9 + 1}]}, 422),
        ({"tiers": [{"name": "A", "price_cents": 1, "supply": 1, "price_wei": 2**72}]}, 422),
        ({"tiers": [{"name": "A", "price_cents": 1, "supply": 1, "per_wallet_limit": 256}]}, 422),
        ({"tiers": [{"name": f"T{i}", "price_cents": 1, "supply": 1} for i in range(17)]}, 422),
        ({"royalty_bps": 10_001}, 422),
        ({"ends_at": (datetime.now(UTC) + timedelta(days=9)).isoformat()}, 422),
    ],
)
def test_invalid_events_are_refused_and_nothing_is_deployed(
    client: TestClient,
    admin: LocalAccount,
    runtime: Runtime,
    overrides: dict[str, object],
    status: int,
) -> None:
    headers = {"Authorization": f"Bearer {signed_in(client, admin).token}"}
    response = client.post("/admin/events", json=event_body(**overrides), headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert count(runtime, Event) == 0


def test_default_symbol_and_badge_carry_only_event_facts() -> None:
    assert default_symbol("Rock & Roll 2030!") == "ROCKROLL"
    assert default_symbol("***") == "TIX"
    svg = event_badge_svg("<script>", "Hall", datetime(2030, 1, 1, tzinfo=UTC))
    assert "<script>" not in svg and "&lt;script&gt;" in svg


def test_a_failed_deployment_does_not_block_the_next_event(
    client: TestClient, admin: LocalAccount, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found in review: the row id was the on-chain id, and SQLite hands a rolled-back id out
    # again, so a deployment that landed but failed afterwards blocked every later event.
    headers = {"Authorization": f"Bearer {signed_in(client, admin).token}"}
    real_create = runtime.chain.create_event

    def lands_then_fails(*args: object, **kwargs: object) -> object:
        real_create(*args, **kwargs)  # type: ignore[arg-type]
        raise TransactionFailed("0x" + "0" * 64, "confirmation wait timed out")

    monkeypatch.setattr(runtime.chain, "create_event", lands_then_fails)
    failed = client.post("/admin/events", json=event_body(), headers=headers)
    assert failed.status_code == 502
    assert count(runtime, Event) == 0
    monkeypatch.setattr(runtime.chain, "create_event", real_create)
    created = client.post("/admin/events", json=event_body(), headers=headers)
    assert created.status_code == 201, created.text


def test_event_terms_reach_the_contract(
    client: TestClient, admin: LocalAccount, chain: ChainClient
) -> None:
    headers = {"Authorization": f"Bearer {signed_in(client, admin).token}"}
    body = event_body(
        resale_cap_bps=12_000,
        royalty_bps=250,
        transfers_locked=True,
        tiers=[
            {"name": "GA", "price_cents": 1500, "supply": 10},
            {
                "name": "VIP",
                "price_cents": 9000,
                "supply": 2,
                "price_wei": 5 * 10**16,
                "per_wallet_limit": 1,
            },
        ],
    )

    created = client.post("/admin/events", json=body, headers=headers)

    assert created.status_code == 201, created.text
    event = created.json()
    contract = chain._ticket_event(event["contract_address"])
    info = contract.functions.eventInfo().call()
    assert info[0] == event["chain_event_id"]
    assert (info[5], info[6], info[7], info[11]) == (12_000, 250, 2, True)
    ga, vip = event["tiers"]
    assert ga["price_wei"] == 1500 * 3_000_000_000_000  # FAIRTIX_WEI_PER_CENT default
    assert vip["price_wei"] == 5 * 10**16 and vip["per_wallet_limit"] == 1
    on_chain_vip = contract.functions.tier(1).call()
    assert (on_chain_vip[0], on_chain_vip[1], on_chain_vip[3]) == (5 * 10**16, 2, 1)
    # Each tier's metadata is pinned and served, and is what tokenURI will point at.
    metadata = client.get("/ipfs/" + vip["metadata_uri"].removeprefix("ipfs://"))
    assert metadata.status_code == 200 and metadata.json()["name"] == "Catalog night - VIP"
