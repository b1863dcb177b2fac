"""The signer's nonces held by unfinished mint batches, and the one lock on choosing a nonce.

Next nonce = max(the node's pending count, the highest nonce of our unfinished batches + 1, the
client's own counter). The batches count because a batch is stored before it is sent: until its
broadcast (or after a crash, its rebroadcast) the node does not know its nonce is taken. A card
resale's settlement (``buyResaleFor``, backend.resale.settlement) is written ahead the same way
and holds its nonce the same way while it is ``settling``.

Every process holding the key chooses nonces under one lock: ``ChainClient._transact`` (e.g.
the API's create_event) through ``NonceFloor``, the worker in its write-ahead transaction
through ``lock_signer``. On PostgreSQL that is a transaction-scoped advisory lock. On SQLite the
write-ahead transaction is already the only writer, and the embedded profile runs the API and
the worker in one process, where ChainClient's send lock serialises them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select, union_all
from sqlalchemy.orm import Session

from backend.chain.client import ChainClient
from backend.fulfilment.models import SENT, MintBatch, MintTx
from backend.resale.models import P_SETTLING, CardPurchase
from backend.sales.models import REFUND_SENT, HolderRefund


def lowest_free(session: Session | Connection, chain_id: int, signer: str) -> int:
    """One past the highest nonce an unfinished batch of ``signer`` holds (0 if none does)."""
    top: int | None = session.scalar(_highest_held(chain_id, signer))
    return 0 if top is None else int(top) + 1


def lock_signer(session: Session | Connection, chain_id: int, signer: str) -> None:
    """Wait for, then hold until the transaction ends, the right to choose ``signer``'s next
    nonce (PostgreSQL; a no-op on SQLite, whose write transactions already run one at a time)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_lock_key(chain_id, signer))))


class NonceFloor:
    """``ChainClient.use_nonce_floor`` from the database: yields the lowest nonce no unfinished
    batch holds, with the signer's lock held until the client has sent its transaction.

    Stored batches the node has not counted yet (their worker died before sending them) are sent
    first, from their stored raw transactions: a transaction above them would otherwise wait in
    the node's queue for the worker to come back, and create_event waits for its receipt while
    holding a database transaction the worker may need.
    """

    def __init__(self, engine: Engine, chain: ChainClient) -> None:
        self._engine = engine
        self._chain = chain

    @contextmanager
    def __call__(self) -> Iterator[int]:
        chain_id, signer = self._chain.chain_id, self._chain.signer_address.lower()
        if self._engine.dialect.name == "postgresql":
            with self._engine.connect() as connection, connection.begin():
                lock_signer(connection, chain_id, signer)
                floor = lowest_free(connection, chain_id, signer)
                self._send_unseen(floor, chain_id, signer, connection)
                yield floor
            return
        rows = self._read_sqlite(_highest_held(chain_id, signer))
        floor = 0 if not rows or rows[0][0] is None else int(rows[0][0]) + 1
        self._send_unseen(floor, chain_id, signer, None)
        yield floor

    def _send_unseen(
        self, floor: int, chain_id: int, signer: str, connection: Connection | None
    ) -> None:
        pending = self._chain.pending_nonce_count() if floor else 0
        if floor <= pending:
            return
        statement = (
            select(MintTx.raw_tx)
            .join(MintBatch, MintBatch.id == MintTx.batch_id)
            .where(
                MintBatch.status == SENT,
                MintBatch.chain_id == chain_id,
                MintBatch.signer == signer,
                MintBatch.nonce >= pending,
            )
            .order_by(MintBatch.nonce, MintTx.id)
        )
        settlements = (
            select(CardPurchase.settle_raw_tx)
            .where(
                CardPurchase.status == P_SETTLING,
                CardPurchase.settle_chain_id == chain_id,
                CardPurchase.settle_signer == signer,
                CardPurchase.settle_nonce >= pending,
            )
            .order_by(CardPurchase.settle_nonce)
        )
        raw_txs: list[str] = []
        for query in (statement, settlements):
            if connection is not None:
                raw_txs += [str(raw_tx) for raw_tx in connection.scalars(query)]
            else:
                raw_txs += [str(row[0]) for row in self._read_sqlite(query)]
        # Every stored version, lowest nonce first: the node keeps the best-paying one.
        for raw_tx in raw_txs:
            self._chain.broadcast(raw_tx)

    def _read_sqlite(self, statement: Select[Any]) -> list[Any]:
        # A plain DB-API read in autocommit, outside SQLAlchemy's transactions: those begin with
        # BEGIN IMMEDIATE, which would wait for the write lock that the calling thread itself may
        # hold (create_event deploys inside its transaction). In WAL mode a reader never waits.
        # Only our own integers and hex addresses are inlined as literals.
        compiled = statement.compile(
            dialect=self._engine.dialect, compile_kwargs={"literal_binds": True}
        )
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute(str(compiled))
            rows = list(cursor.fetchall())
            cursor.close()
        finally:
            raw.close()
        return rows


def _highest_held(chain_id: int, signer: str) -> Select[Any]:
    """The highest nonce written ahead and not yet finished: a mint batch's, a card resale's
    settlement's or a cancelled event's ether refund to a ticket's holder (they share the key)."""
    batches = select(MintBatch.nonce.label("nonce")).where(
        MintBatch.status == SENT, MintBatch.chain_id == chain_id, MintBatch.signer == signer
    )
    settlements = select(CardPurchase.settle_nonce.label("nonce")).where(
        CardPurchase.status == P_SETTLING,
        CardPurchase.settle_chain_id == chain_id,
        CardPurchase.settle_signer == signer,
    )
    holder_refunds = select(HolderRefund.tx_nonce.label("nonce")).where(
        HolderRefund.status == REFUND_SENT,
        HolderRefund.tx_chain_id == chain_id,
        HolderRefund.tx_signer == signer,
    )
    held = union_all(batches, settlements, holder_refunds).subquery()
    return select(func.max(held.c.nonce))


def _lock_key(chain_id: int, signer: str) -> int:
    digest = hashlib.sha256(f"fairtix nonce {chain_id} {signer.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)
