"""Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from backend.catalog.models import Event, Tier
from backend.db.base import utcnow
from backend.db.engine import make_engine
from backend.db.migrate import alembic_config, upgrade_to_head
from backend.db.models import Base
from backend.sales.models import Order, OrderTransition
from tests.helpers import wallet

pytestmark = pytest.mark.db


def test_migrations_match_the_models(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    try:
        upgrade_to_head(engine)
        upgrade_to_head(engine)  # idempotent: a restart applies nothing
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_0009_expires_duplicate_open_orders_and_then_refuses_them(empty_database_url: str) -> None:
    """Holds a buyer got twice by racing requests (before 0009) are expired, the newest kept,
    their seats given back; afterwards the database refuses a second open order."""
    engine = make_engine(empty_database_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0008_order_disputes")
            event_id = _seed_event(connection)
            tier_id = connection.scalar(select(Tier.id).where(Tier.event_id == event_id))
            connection.execute(update(Tier).values(reserved=7))
            order_ids = [
                connection.scalar(
                    insert(Order)
                    .values(_order(event_id, tier_id, buyer, quantity, status))
                    .returning(Order.id)
                )
                for buyer, quantity, status in [
                    ("0xaa", 2, "held"),
                    ("0xaa", 4, "awaiting_payment"),
                    ("0xbb", 1, "held"),
                ]
            ]
        upgrade_to_head(engine)
        with engine.begin() as connection:
            statuses = connection.execute(
                select(Order.id, Order.status).where(Order.id.in_(order_ids)).order_by(Order.id)
            ).all()
            assert [status for _id, status in statuses] == ["expired", "awaiting_payment", "held"]
            assert connection.scalar(select(Tier.reserved)) == 5
            [cause] = connection.scalars(
                select(OrderTransition.cause).where(OrderTransition.order_id == order_ids[0])
            )
            assert "migration 0009" in cause
            with pytest.raises(IntegrityError):
                connection.execute(
                    insert(Order).values(_order(event_id, tier_id, "0xbb", 1, "held"))
                )
    finally:
        engine.dispose()


def _seed_event(connection: Connection) -> int:
    """An event with one tier as the schema at 0008 has them, written through the reflected
    tables: the models' later columns don't exist yet."""
    events = Table("events", MetaData(), autoload_with=connection)
    tiers = Table("tiers", MetaData(), autoload_with=connection)
    now = utcnow()
    event_id = connection.scalar(
        insert(events)
        .values(
            name="Migration test",
            symbol="MT",
            description="",
            venue="",
            starts_at=now + timedelta(days=1),
            sale_opens_at=now,
            organizer_address=wallet(1),
            chain_id=1,
            chain_event_id=secrets.randbits(63),
            contract_address=wallet(2),
            deploy_block=0,
            deploy_tx_hash="0x" + "3" * 64,
            image_cid="Qm",
            max_admitted=10,
            admission_ttl_seconds=600,
            max_tickets_per_order=4,
            ends_at=now + timedelta(days=1, hours=4),
            resale_cap_bps=11_000,
            royalty_bps=500,
            transfers_locked=False,
            created_at=now,
        )
        .returning(events.c.id)
    )
    connection.execute(
        insert(tiers).values(
            event_id=event_id,
            name="GA",
            price_cents=1000,
            currency="eur",
            supply=10,
            reserved=0,
            seats_assigned=0,
            chain_tier=0,
            price_gwei=3_000_000,
            per_wallet_limit=0,
            metadata_cid="",
        )
    )
    return int(event_id)


def _order(event_id: int, tier_id: int, buyer: str, quantity: int, status: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "tier_id": tier_id,
        "buyer_address": buyer,
        "quantity": quantity,
        "unit_price_cents": 100,
        "currency": "eur",
        "status": status,
        "created_at": utcnow(),
    }


def test_0010_opens_resale_on_existing_events_and_keeps_their_transfer_policy(
    empty_database_url: str,
) -> None:
    engine = make_engine(empty_database_url)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0009_one_open_order_per_buyer")
            event_id = _seed_event(connection)
        upgrade_to_head(engine)
        with engine.begin() as connection:
            row = connection.execute(
                select(
                    Event.resale_enabled, Event.resale_closes_before_seconds, Event.transfers_locked
                ).where(Event.id == event_id)
            ).one()
        assert tuple(row) == (True, 0, False)
    finally:
        engine.dispose()
