"""What a listing costs the database: the statements each of its two requests sends, counted.
Every check a listing makes (holder, admission, the market's listing, the card payout's source,
whether any webhook endpoint listens) is read with the ticket in one statement; listing adds
the ticket's lock before it and the insert after. A change that reads one more thing per
listing shows here, where the benchmark would only show it as noise."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from backend.demo import ApiError
from backend.resale.models import Listing
from backend.runtime import Runtime
from backend.tickets.models import Ticket
from backend.worker import Worker
from tests.resale.cardmarket import card_holding
from tests.resale.market import listing_body, sell_order, sign_typed, subscribe

pytestmark = pytest.mark.db

_CONTROL = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"}


@contextmanager
def counted(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        verb = sql.split(None, 1)[0].upper()
        # Transaction control, and the caller's sign-in (kept in the database in these tests,
        # in Redis in service), are not the listing's.
        if verb not in _CONTROL and "auth_sessions" not in sql:
            statements.append(verb)

    event.listen(runtime.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)


def test_a_card_listing_reads_once_to_ask_and_locks_reads_and_inserts_to_list(
    client: TestClient, worker: Worker, admin: LocalAccount, runtime: Runtime
) -> None:
    market = card_holding(client, worker, admin, quantity=2)
    seller, event_id = market.holder, market.event["id"]

    for token_id, listened in zip(market.token_ids, (False, True), strict=True):
        if listened:
            subscribe(runtime, admin.address, ["listing.created"])
        with counted(runtime) as asked:
            typed = sell_order(seller, event_id, token_id, market.face_wei, payout="card")
        body = listing_body(typed["typed_data"], sign_typed(seller.wallet, typed["typed_data"]),
                            event_id, payout="card")  # fmt: skip
        with counted(runtime) as listed:
            seller._call("POST", "/listings", json=body)

        assert asked == ["SELECT"]
        # The ticket's lock, the facts, the listing; with an endpoint listening, then its
        # lookup, the delivery and its outbox message.
        delivered = ["SELECT", "INSERT", "INSERT"] if listened else []
        assert listed == ["SELECT", "SELECT", "INSERT", *delivered]


def test_a_listing_that_waited_for_the_tickets_lock_replaces_the_one_listed_meanwhile(
    client: TestClient, worker: Worker, admin: LocalAccount, runtime: Runtime
) -> None:
    """The facts are read after the lock is taken: a listing committed by whoever held it is
    seen and replaced, not missed (which would break the one-listing-per-ticket index)."""
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("needs concurrent writers: runs on PostgreSQL")
    market = card_holding(client, worker, admin)
    seller, event_id, token_id = market.holder, market.event["id"], market.token_ids[0]
    typed = sell_order(seller, event_id, token_id, market.face_wei)["typed_data"]
    body = listing_body(typed, sign_typed(seller.wallet, typed), event_id)
    answers: list[int] = []

    def list_it() -> None:
        try:
            answers.append(int(seller._call("POST", "/listings", json=body)["id"]))
        except ApiError as exc:
            answers.append(-exc.status)

    with runtime.sessions() as session, session.begin():
        # Another listing request of the ticket, in flight: it holds the ticket's lock.
        ticket = session.scalars(
            select(Ticket).where(Ticket.token_id == token_id).with_for_update()
        ).one()
        first = Listing(event_id=ticket.event_id, tier_id=ticket.tier_id, ticket_id=ticket.id,
                        token_id=token_id, seller_address=seller.wallet.address.lower(),
                        price_gwei=market.face_wei // 10**9, sale_nonce=0,
                        deadline=int(typed["message"]["deadline"]), signature="0x00",
                        status="live")  # fmt: skip
        session.add(first)
        session.flush()
        waiting = threading.Thread(target=list_it)
        waiting.start()
        time.sleep(0.5)  # the request is waiting for the lock
        assert not answers
    waiting.join(30)

    assert len(answers) == 1 and answers[0] > 0, answers
    with runtime.sessions() as session:
        statuses = dict(session.execute(select(Listing.id, Listing.status)).all())
    assert statuses == {first.id: "delisted", answers[0]: "live"}
