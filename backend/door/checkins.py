"""The chain hears of admissions in batches: the worker claims pending admissions (each
admission row is its own outbox message, written in the scan's transaction), groups them by
event contract, and sends one ``checkIn`` per group of up to ``door_checkin_batch`` tickets.

A claim is a lease (``SENDING`` until ``lease_until``): a worker that dies mid-batch leaves it
to be claimed again when the lease runs out, and the resend is harmless (a ticket the chain
already marked is set aside by ``ChainClient.check_in``, never sent twice).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Table, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.chain.client import ChainClient
from backend.chain.types import CheckIn
from backend.config import Settings
from backend.db.base import utcnow
from backend.db.engine import transaction
from backend.door.models import CHECKED_IN, PENDING, SENDING, SKIPPED, DoorAdmission

log = logging.getLogger("fairtix.door.chain")

_ADMISSIONS: Table = DoorAdmission.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Claimed:
    id: int
    event_id: int
    token_id: int
    holder: str


class CheckInSender:
    def __init__(
        self, sessions: sessionmaker[Session], chain: ChainClient, settings: Settings
    ) -> None:
        self._sessions = sessions
        self._chain = chain
        self._batch = settings.door_checkin_batch
        self._lease = timedelta(seconds=settings.door_checkin_lease_seconds)

    def run_once(self) -> int:
        """Claims and sends what is pending; returns how many admissions reached an end."""
        with transaction(self._sessions) as session:
            claimed = self._claim(session)
            contracts = dict(
                session.execute(
                    select(Event.id, Event.contract_address).where(
                        Event.id.in_({c.event_id for c in claimed})
                    )
                ).all()
            )
        by_event: dict[int, list[Claimed]] = defaultdict(list)
        for item in claimed:
            by_event[item.event_id].append(item)
        done = 0
        for event_id, items in by_event.items():
            for start in range(0, len(items), self._batch):
                chunk = items[start : start + self._batch]
                try:
                    done += self._send(contracts[event_id], chunk)
                except Exception:
                    log.exception(
                        "check-in batch failed; will retry",
                        extra={"event_id": event_id, "tickets": len(chunk)},
                    )
                    self._release(chunk)
        return done

    def _claim(self, session: Session) -> list[Claimed]:
        now = utcnow()
        due = (
            select(DoorAdmission.id)
            .where(
                or_(
                    DoorAdmission.chain_state == PENDING,
                    (DoorAdmission.chain_state == SENDING) & (DoorAdmission.lease_until < now),
                ),
            )
            .order_by(DoorAdmission.id)
            .limit(self._batch * 4)
            .with_for_update(skip_locked=True)
        )
        rows = session.execute(
            update(_ADMISSIONS)
            .where(_ADMISSIONS.c.id.in_(due.scalar_subquery()))
            .values(
                chain_state=SENDING,
                lease_until=now + self._lease,
                chain_attempts=_ADMISSIONS.c.chain_attempts + 1,
            )
            .returning(
                _ADMISSIONS.c.id,
                _ADMISSIONS.c.event_id,
                _ADMISSIONS.c.token_id,
                _ADMISSIONS.c.holder,
            )
        ).all()
        return sorted(
            (Claimed(row.id, row.event_id, row.token_id, row.holder) for row in rows),
            key=lambda c: c.id,
        )

    def _send(self, contract: str, chunk: Sequence[Claimed]) -> int:
        result = self._chain.check_in(contract, [CheckIn(c.token_id, c.holder) for c in chunk])
        by_token = {c.token_id: c.id for c in chunk}
        marked = [by_token[t] for t in (*result.checked_in, *result.already_used)]
        skipped = [by_token[t] for t in result.skipped]
        with transaction(self._sessions) as session:
            if marked:
                session.execute(
                    _MARK,
                    [
                        {
                            "row_id": row_id,
                            "state": CHECKED_IN,
                            "tx": result.tx_hash,
                            "note": None,
                        }
                        for row_id in marked
                    ],
                )
            if skipped:
                session.execute(
                    _MARK,
                    [
                        {
                            "row_id": row_id,
                            "state": SKIPPED,
                            "tx": None,
                            "note": "the chain refused it: ticket gone or event cancelled",
                        }
                        for row_id in skipped
                    ],
                )
        log.info(
            "tickets checked in on chain",
            extra={
                "contract": contract,
                "tx": result.tx_hash,
                "checked_in": len(result.checked_in),
                "already_used": len(result.already_used),
                "skipped": len(result.skipped),
                "gas_used": result.gas_used,
            },
        )
        return len(marked) + len(skipped)

    def _release(self, chunk: Sequence[Claimed]) -> None:
        # Back to pending at once; the worker's next pass tries again (a chain that is down
        # fails quickly, and the lease would only delay the retry).
        with transaction(self._sessions) as session:
            session.execute(
                update(DoorAdmission)
                .where(DoorAdmission.id.in_([c.id for c in chunk]))
                .values(chain_state=PENDING, lease_until=None)
            )


_MARK = (
    update(_ADMISSIONS)
    .where(_ADMISSIONS.c.id == bindparam("row_id"))
    .values(
        chain_state=bindparam("state"),
        chain_tx_hash=bindparam("tx"),
        chain_note=bindparam("note"),
        lease_until=None,
    )
)
