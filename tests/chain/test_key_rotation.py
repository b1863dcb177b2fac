"""Rotating the backend key (``fairtix rotate-key``): the new key gets every role the service
needs, mints and creates events with it; the old key loses them only once nothing of its is
unfinished, and never the key the command signs with."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.catalog.models import Event
from backend.chain import rotation
from backend.chain.client import ChainClient
from backend.chain.errors import ChainError
from backend.chain.protocol import CardMint
from backend.chain.testing import funded_account
from backend.db.engine import transaction
from backend.fulfilment.models import MINED
from backend.runtime import Runtime
from backend.sales import service as sales
from backend.worker import Worker
from tests.fulfilment.factories import create_event, paid_orders
from tests.fulfilment.helpers import batches, crash_after_storing, orders
from tests.helpers import drain

pytestmark = pytest.mark.db


def rotated(runtime: Runtime) -> Runtime:
    """The same service, restarted with a new funded key."""
    chain = ChainClient(
        runtime.chain._w3,
        funded_account(runtime.chain._w3),
        factory_address=runtime.chain.factory_address,
    )
    return replace(runtime, chain=chain)


def contract_of(runtime: Runtime, event_id: int) -> str:
    with transaction(runtime.sessions) as session:
        address = session.scalar(select(Event.contract_address).where(Event.id == event_id))
    assert address
    return address


def test_a_granted_key_mints_and_the_old_one_is_revoked_admin_last(
    runtime: Runtime, client: TestClient
) -> None:
    event_id = create_event(runtime)
    old, new = runtime.chain, rotated(runtime).chain
    contracts = rotation.contracts_of(old, runtime.sessions)
    assert [c.label for c in contracts] == ["factory", f"event {event_id}"]

    granted = rotation.grant(old, contracts, new.signer_address)
    assert [(c.contract.label, c.role, c.changed) for c in granted] == [
        ("factory", "admin", True),
        ("factory", "event creator", True),
        (f"event {event_id}", "admin", True),
        (f"event {event_id}", "minter", True),
        (f"event {event_id}", "permit signer", True),
        (f"event {event_id}", "scanner", True),
        (f"event {event_id}", "relayer", True),
    ]
    # Run again (an interrupted run is simply repeated): nothing left to send.
    assert not any(c.changed for c in rotation.grant(old, contracts, new.signer_address))

    # The service restarted with the new key mints the orders paid since.
    order_ids = paid_orders(runtime, event_id, [2, 1])
    drain(Worker(replace(runtime, chain=new), http=client))
    [batch] = batches(runtime)
    assert (batch.signer, batch.status) == (new.signer_address.lower(), MINED)
    assert {o.status for o in orders(runtime, order_ids)} == {sales.FULFILLED}

    revoked = rotation.revoke(new, runtime.sessions, contracts, old.signer_address)
    assert [(c.contract.label, c.role) for c in revoked if c.changed] == [
        ("factory", "event creator"),
        ("factory", "admin"),
        (f"event {event_id}", "relayer"),
        (f"event {event_id}", "scanner"),
        (f"event {event_id}", "permit signer"),
        (f"event {event_id}", "minter"),
        (f"event {event_id}", "admin"),
    ]
    address = contract_of(runtime, event_id)
    assert not old.has_role(address, rotation.EVENT_ROLES["minter"], old.signer_address)
    assert new.has_role(address, rotation.EVENT_ROLES["admin"], new.signer_address)
    # The rotated-out key can no longer mint; the new one creates the next event.
    with pytest.raises(ChainError):
        old.mint_batch(address, [CardMint(999, 0, ("0x" + "11" * 20,))])
    later = contract_of(runtime, create_event(replace(runtime, chain=new)))
    assert new.has_role(later, rotation.EVENT_ROLES["minter"], new.signer_address)
    assert not new.has_role(later, rotation.EVENT_ROLES["minter"], old.signer_address)


def test_revoking_is_refused_for_the_own_key_and_while_the_old_key_has_batches_in_flight(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    event_id = create_event(runtime)
    old, new = runtime.chain, rotated(runtime).chain
    contracts = rotation.contracts_of(old, runtime.sessions)
    rotation.grant(old, contracts, new.signer_address)
    paid_orders(runtime, event_id, [1])
    crash_after_storing(runtime, monkeypatch)  # a batch of the old key, stored, unsent

    with pytest.raises(rotation.RotationRefused, match="not finished yet"):
        rotation.revoke(new, runtime.sessions, contracts, old.signer_address)
    with pytest.raises(rotation.RotationRefused, match="signs with"):
        rotation.revoke(new, runtime.sessions, contracts, new.signer_address)
    # Nothing was taken away: the old key's batch still goes out and is minted.
    address = contract_of(runtime, event_id)
    assert old.has_role(address, rotation.EVENT_ROLES["minter"], old.signer_address)
    drain(Worker(runtime, http=client))
    assert [b.status for b in batches(runtime)] == [MINED]
