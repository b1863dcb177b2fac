"""A listing's two requests on PostgreSQL, awaited on the event loop (the listing lane).

The routes (backend/resale/router.py) run the service's functions in the request pool through
the ORM: a hop to a thread and back, a Session, four ORM rows loaded, the chain read over a
blocking connection. This answers the same requests with the same rules, in the same order,
with nothing blocking the loop:

- the ticket's facts in ONE statement built from the same clauses as the service's
  (``service.facts_statement``: the ticket, its event, tier and primary order,
  the door's admission, a listing on the market, a webhook endpoint listening, "ever resold",
  card payouts given back), run through SQLAlchemy Core on an asyncio engine (psycopg's async
  connection), and made detached model objects without an ORM session;
- the service's own checks on them (``check_terms``, ``check_on_chain``, ``draft_of``,
  ``signed_listing``);
- the chain's ``ownerOf`` and ``ticket`` as one JSON-RPC batch over a kept-alive asyncio
  connection (``ChainClient.holder_and_state_async``);
- a listing: the ticket's row lock first, then the facts, then the INSERT, in one transaction,
  as the service does it.

What it does not decide it leaves to the route, having written nothing: a listing that would
replace one on the market, an event whose webhook endpoints want the listing, a card payout of a
ticket resold before (each needs reads or writes the ORM path does), a chain it can't read from
the loop. Refusals (not the holder, price above the cap ...) raise the service's exceptions, and
the lane leaves those to the route too, which answers them as problem+json.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus
from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Compiled, make_url
from sqlalchemy.orm import Mapper

from backend.chain.client import ChainClient
from backend.chain.errors import ContractRevert
from backend.db.engine import normalise_url
from backend.resale import payouts
from backend.resale import service as resale
from backend.resale.errors import TicketNotResellable

POOL_SIZE = 8
CONNECT_TIMEOUT_SECONDS = 5
_DIALECT = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
Processor = Callable[[Any], Any] | None


class LeftToRoute(Exception):
    """Nothing was written; the ordinary route decides this request."""


def conninfo_of(database_url: str) -> str | None:
    """libpq's URL of the service's PostgreSQL database, or None for another database (SQLite:
    the lane leaves every listing to the routes)."""
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgPool:
    """A few psycopg asyncio connections in autocommit (a transaction is begun only where one
    is needed), opened when first needed and kept. A connection left broken or inside a
    transaction is closed, not put back. (psycopg's own pool is a package more; this is all
    the lane needs.)"""

    def __init__(self, conninfo: str, size: int = POOL_SIZE) -> None:
        self._conninfo = conninfo
        self._free = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with self._free:
            if self._idle:
                connection = self._idle.pop()
            else:
                # A bounded connect: with the database unreachable, each listing request
                # would otherwise wait out TCP's own timeout before the route is tried.
                connection = await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
                )
            try:
                yield connection
            finally:
                # Back to the pool only idle and sound: a refusal raised after the transaction
                # rolled back leaves it so; a query cut off or a lost server does not.
                if not connection.broken and (
                    connection.info.transaction_status == TransactionStatus.IDLE
                ):
                    self._idle.append(connection)
                else:
                    await connection.close()

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


@dataclass(frozen=True)
class _Statement:
    """A SQLAlchemy statement compiled once for psycopg: its SQL, the values of the bind
    parameters it carries itself, and the processors SQLAlchemy would apply to each bound
    value (UTC datetimes ...) and to each column of a row."""

    sql: str
    defaults: dict[str, Any]
    binds: dict[str, Processor]
    columns: tuple[Processor, ...]

    @classmethod
    def of(cls, statement: Any, column_keys: Sequence[str] | None = None) -> _Statement:
        compiled: Compiled = statement.compile(dialect=_DIALECT, column_keys=column_keys)
        binds = {
            key: param.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            for key, param in compiled.binds.items()  # type: ignore[attr-defined]
        }
        columns = tuple(
            column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
            for column in getattr(statement, "selected_columns", ())
        )
        defaults = {k: v for k, v in compiled.params.items() if v is not None}
        return cls(str(compiled), defaults, binds, columns)

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        params = {**self.defaults, **values}
        for key, process in self.binds.items():
            if process is not None and params.get(key) is not None:
                params[key] = process(params[key])
        return params

    def row(self, values: Sequence[Any]) -> list[Any]:
        return [
            process(value) if process is not None and value is not None else value
            for process, value in zip(self.columns, values, strict=True)
        ]


@dataclass(frozen=True)
class _Loader:
    """Makes a detached model object (no session, as if loaded and expunged) from a slice of a
    row, as the ORM's own loading does: the values go straight into the instance's dict, so
    nothing is pending and attribute reads are plain dict reads."""

    mapper: Mapper[Any]
    keys: tuple[str, ...]

    def load(self, values: Sequence[Any]) -> Any:
        if values[0] is None:  # the outer-joined order of a ticket without one
            return None
        instance = self.mapper.class_manager.new_instance()
        instance.__dict__.update(zip(self.keys, values, strict=True))
        return instance


class _FactsQuery:
    """The service's facts statement (service.facts_statement) with each model's columns
    named one by one, primary key first, and the loaders that make its rows TicketFacts."""

    def __init__(self) -> None:
        mappers: list[Mapper[Any]] = [inspect(model) for model in resale.FACT_MODELS]
        per_model: list[list[tuple[str, Any]]] = [
            [(attr.key, attr.columns[0]) for attr in mapper.column_attrs] for mapper in mappers
        ]
        self.statement = _Statement.of(
            resale.facts_statement(*[column for columns in per_model for _, column in columns])
        )
        self.loaders: list[tuple[int, int, _Loader]] = []
        start = 0
        for mapper, columns in zip(mappers, per_model, strict=True):
            loader = _Loader(mapper, tuple(key for key, _ in columns))
            self.loaders.append((start, start + len(columns), loader))
            start += len(columns)
        self.extras_at = start

    def facts(self, raw: Sequence[Any]) -> resale.TicketFacts:
        row = self.statement.row(raw)
        ticket, event, tier, order = (loader.load(row[a:b]) for a, b, loader in self.loaders)
        admitted, on_market, endpoints, resold, given_back = row[self.extras_at :]
        known = payouts.KnownFacts(bool(resold), order, int(given_back or 0))
        return resale.TicketFacts(
            event, ticket, tier, bool(admitted), bool(on_market), bool(endpoints), known
        )


_FACTS = _FactsQuery()
_LOCK = _Statement.of(resale.LOCK_TICKET)
_INSERT = _Statement.of(resale.INSERT_LISTING, column_keys=resale.LISTING_COLUMNS)


class QuickListings:
    """The lane's answers; one per API process, on its event loop."""

    def __init__(self, conninfo: str, chain: ChainClient) -> None:
        self.pool = PgPool(conninfo)
        self.chain = chain

    async def close(self) -> None:
        await self.pool.close()
        self.chain.close_loop_connections()

    async def _read_facts(
        self, cursor: psycopg.AsyncCursor[Any], terms: resale.SellOrderTerms
    ) -> resale.TicketFacts:
        params = {"event_id": terms.event_id, "token_id": terms.token_id}
        await cursor.execute(_FACTS.statement.sql, _FACTS.statement.params(params), prepare=True)
        row = await cursor.fetchone()
        if row is None:
            raise LeftToRoute("no such ticket: the route says which of event and ticket")
        return _FACTS.facts(row)

    async def _nonce_on_chain(
        self, facts: resale.TicketFacts, wallet: str, nonce: int | None
    ) -> int:
        event, ticket = facts.event, facts.ticket
        try:
            owner, state = await self.chain.holder_and_state_async(
                event.contract_address, ticket.token_id
            )
        except ContractRevert as exc:  # burned by a refund claim the indexer has not seen yet
            raise TicketNotResellable(ticket.token_id, f"it is gone on chain ({exc})") from exc
        return resale.check_on_chain(owner, state, ticket, wallet, nonce)

    async def draft(
        self, wallet: str, terms: resale.SellOrderTerms, now: datetime, wei_per_cent: int
    ) -> resale.Draft:
        """``service.draft_sell_order``: one read (autocommit), then the chain's nonce."""
        async with self.pool.connection() as connection:
            facts = await self._read_facts(connection.cursor(), terms)
        checked = _checked(facts, wallet, terms, now, wei_per_cent)
        nonce = await self._nonce_on_chain(facts, wallet, None)
        return resale.draft_of(checked, self.chain, wallet, terms, nonce)

    async def list(
        self,
        wallet: str,
        terms: resale.SellOrderTerms,
        nonce: int,
        signature: str,
        now: datetime,
        wei_per_cent: int,
    ) -> resale.ListingView:
        """``service.create_listing`` where it neither replaces a listing nor notifies. Two
        round trips to the database, in psycopg's pipeline mode: BEGIN, the ticket's lock and
        the facts (each statement starts when the one before ended, so the facts are read
        after the lock is ours, as service.LOCK_TICKET requires); then the INSERT and COMMIT."""
        params = {"event_id": terms.event_id, "token_id": terms.token_id}
        async with self.pool.connection() as connection, connection.pipeline():
            cursor = connection.cursor()
            async with connection.transaction():
                await cursor.execute(_LOCK.sql, _LOCK.params(params), prepare=True)
                facts = await self._read_facts(cursor, terms)  # fetched: the first round trip
                checked = _checked(facts, wallet, terms, now, wei_per_cent)
                listing = resale.signed_listing(
                    checked, self.chain, wallet, terms, nonce, signature
                )
                await self._nonce_on_chain(facts, wallet, nonce)
                if facts.on_market:
                    raise LeftToRoute("a listing of the ticket is on the market: to replace")
                if facts.endpoints:
                    raise LeftToRoute("a webhook endpoint may want listing.created")
                listing.created_at = now
                row = _INSERT.params(resale.row_of(listing))
                await cursor.execute(_INSERT.sql, row, prepare=True)
            # The INSERT and the COMMIT went in the second round trip, synced at the commit.
            inserted = await cursor.fetchone()
            assert inserted is not None
            listing.id = inserted[0]
        resale.log_listed(listing)
        return resale.ListingView(listing, checked.event, checked.tier, checked.ticket.seat)


def _checked(
    facts: resale.TicketFacts,
    wallet: str,
    terms: resale.SellOrderTerms,
    now: datetime,
    wei_per_cent: int,
) -> resale.Checked:
    try:
        return resale.check_terms(
            facts, wallet, terms, now, wei_per_cent=wei_per_cent, session=None
        )
    except resale.NeedsSession as exc:
        raise LeftToRoute(str(exc)) from exc
