"""The worker's check-in batches on eth-tester: a retried batch, a ticket already used on chain,
and an event cancelled before its batch went out."""

from __future__ import annotations

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chain.client import ChainClient
from backend.chain.types import CheckIn
from backend.door.models import SKIPPED, DoorAdmission
from backend.runtime import Runtime
from backend.worker import Worker
from tests.door.test_routes import _entry, _scan, _scanner, _sold_ticket
from tests.helpers import drain

pytestmark = pytest.mark.db


def test_a_batch_sent_again_changes_nothing_and_reports_it_used_already(
    client: TestClient, worker: Worker, admin: LocalAccount, chain: ChainClient
) -> None:
    event, buyer, token_id, _organizer = _sold_ticket(client, worker, admin)
    entries = [CheckIn(token_id, buyer.wallet.address.lower())]

    first = chain.check_in(event["contract_address"], entries)
    again = chain.check_in(event["contract_address"], entries)

    assert first.checked_in == (token_id,) and first.tx_hash is not None
    assert first.gas_used > 0
    # The holder-checked checkIn leaves a used ticket as it is, so a retried batch is mined
    # and changes nothing; the receipt's logs say which tickets it marked.
    assert (again.checked_in, again.already_used, again.skipped) == ((), (token_id,), ())
    assert chain.ticket_used(event["contract_address"], token_id)


def test_a_ticket_that_changed_holder_after_the_scan_is_skipped(
    client: TestClient, worker: Worker, admin: LocalAccount, chain: ChainClient
) -> None:
    # The door admitted another wallet than the one holding the ticket when the batch is
    # mined (resold in between): the contract skips it, so the new holder's entry survives.
    event, _buyer, token_id, _organizer = _sold_ticket(client, worker, admin)
    stranger = "0x" + "ab" * 20
    result = chain.check_in(event["contract_address"], [CheckIn(token_id, stranger)])
    assert (result.checked_in, result.skipped) == ((), (token_id,))
    assert not chain.ticket_used(event["contract_address"], token_id)


def test_an_unknown_token_is_skipped_and_the_rest_checked_in(
    client: TestClient, worker: Worker, admin: LocalAccount, chain: ChainClient
) -> None:
    event, buyer, token_id, _organizer = _sold_ticket(client, worker, admin)
    holder = buyer.wallet.address.lower()

    result = chain.check_in(
        event["contract_address"], [CheckIn(999 * 256, holder), CheckIn(token_id, holder)]
    )

    assert (result.checked_in, result.skipped) == ((token_id,), (999 * 256,))


def test_admissions_of_an_event_cancelled_before_the_batch_are_skipped(
    client: TestClient, worker: Worker, admin: LocalAccount, runtime: Runtime
) -> None:
    event, buyer, token_id, organizer = _sold_ticket(client, worker, admin)
    credential = _scanner(client, organizer, event["id"], "North")
    code = _entry(client, buyer, token_id).json()["code"]
    assert _scan(client, credential, code, "in").json()["result"] == "admitted"
    cancelled = client.post(
        f"/events/{event['id']}/cancel",
        json={"reason": "storm"},
        headers={"Authorization": f"Bearer {organizer.token}"},
    )
    assert cancelled.status_code == 200, cancelled.text
    drain(worker)  # the contract is cancelled first (an outbox message), then the batch
    with Session(runtime.engine) as session:
        row = session.scalars(select(DoorAdmission)).one()
    # Ended, not a revert retried forever.
    assert (row.chain_state, row.chain_tx_hash) == (SKIPPED, None)
    assert _scan(client, credential, code, "after").json()["reason"] == "event-cancelled"
