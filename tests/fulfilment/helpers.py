"""Reading back what fulfilment recorded, for assertions."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select

from backend.db.engine import transaction
from backend.fulfilment.models import SENT, MintBatch, MintTx
from backend.runtime import Runtime
from backend.sales.models import Order, OrderTransition
from backend.worker import Worker


def batches(runtime: Runtime) -> list[MintBatch]:
    with transaction(runtime.sessions) as session:
        return list(session.scalars(select(MintBatch).order_by(MintBatch.id)))


def mint_txs(runtime: Runtime, batch_id: int) -> list[MintTx]:
    with transaction(runtime.sessions) as session:
        return list(
            session.scalars(select(MintTx).where(MintTx.batch_id == batch_id).order_by(MintTx.id))
        )


def orders(runtime: Runtime, order_ids: Sequence[int]) -> list[Order]:
    with transaction(runtime.sessions) as session:
        rows = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(order_ids)))}
        return [rows[order_id] for order_id in order_ids]


def causes(runtime: Runtime, order_id: int) -> list[str]:
    with transaction(runtime.sessions) as session:
        return list(
            session.scalars(
                select(OrderTransition.cause)
                .where(OrderTransition.order_id == order_id)
                .order_by(OrderTransition.id)
            )
        )


def crash_after_storing(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> MintBatch:
    """One worker pass that stores a batch and dies before the node hears of it."""
    with monkeypatch.context() as patch:
        patch.setattr(runtime.chain, "broadcast", lambda _raw: None)
        Worker(runtime).run_once()
    [batch] = [b for b in batches(runtime) if b.status == SENT]
    assert not runtime.chain.knows_transaction(mint_txs(runtime, batch.id)[0].tx_hash)
    return batch
