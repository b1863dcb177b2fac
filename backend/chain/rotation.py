"""Rotating the backend's key (FAIRTIX_MINTER_PRIVATE_KEY) without stopping sales.

The key is the factory's admin and event creator and each event contract's admin, minter,
permit signer, scanner (the door's check-in batches) and relayer (resales settled for card
buyers). Rotation is two runs of ``fairtix rotate-key``:

1. ``--grant NEW`` with the current key configured: the new address gets every one of those
   roles, on the factory and on every event contract the database knows on this chain.
2. The operator switches FAIRTIX_MINTER_PRIVATE_KEY to the new key and restarts the API and the
   workers. The workers finish the old key's unfinished mint batches (backend.fulfilment.tracker
   follows batches of any signer); permits the old key signed stay valid until it loses the
   signer role.
3. ``--revoke OLD`` with the new key configured, once no batch of the old key is unfinished:
   the old address loses every role, admin last. A crypto purchase permit the old key signed
   is refused by the contract from then on, so wait until the holds open at the switch have
   run out (a permit's deadline is its order's hold).

Each role is checked with ``hasRole`` before it is changed, so a run that was cut off is simply
run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from backend.catalog.models import Event
from backend.chain.client import (
    DEFAULT_ADMIN_ROLE,
    EVENT_CREATOR_ROLE,
    MINTER_ROLE,
    RELAYER_ROLE,
    SCANNER_ROLE,
    SIGNER_ROLE,
    ChainClient,
)
from backend.chain.errors import ChainError
from backend.db.engine import transaction
from backend.fulfilment.models import SENT, MintBatch

# Admin first when granting, last when revoking: the signer must stay admin while it changes the
# other roles, and a run cut off half way never leaves a contract without one.
FACTORY_ROLES = {
    "admin": DEFAULT_ADMIN_ROLE,
    "event creator": EVENT_CREATOR_ROLE,
}
EVENT_ROLES = {
    "admin": DEFAULT_ADMIN_ROLE,
    "minter": MINTER_ROLE,
    "permit signer": SIGNER_ROLE,
    # Events created before the backend's key held these two get them on a grant as well; a
    # revoke skips what the old key never had.
    "scanner": SCANNER_ROLE,
    "relayer": RELAYER_ROLE,
}


@dataclass(frozen=True)
class Contract:
    label: str
    """What the operator reads: "factory" or "event 12"."""
    address: str
    roles: dict[str, bytes]


@dataclass(frozen=True)
class RoleChange:
    contract: Contract
    role: str
    changed: bool
    """False: the account already had (or already lacked) the role; nothing was sent."""


class RotationRefused(ChainError):
    """The run would leave the service unable to mint: nothing was changed."""


def contracts_of(chain: ChainClient, sessions: sessionmaker[Session]) -> list[Contract]:
    """The factory and every deployed event contract of this chain, oldest event first."""
    found = []
    if chain.factory_address is not None:
        found.append(Contract("factory", chain.factory_address, FACTORY_ROLES))
    with transaction(sessions) as session:
        rows = session.execute(
            select(Event.id, Event.contract_address)
            .where(Event.chain_id == chain.chain_id, Event.contract_address != "")
            .order_by(Event.id)
        ).all()
    found += [Contract(f"event {event_id}", address, EVENT_ROLES) for event_id, address in rows]
    return found


def unfinished_batches(sessions: sessionmaker[Session], chain_id: int, signer: str) -> int:
    with transaction(sessions) as session:
        count = session.scalar(
            select(func.count())
            .select_from(MintBatch)
            .where(
                MintBatch.status == SENT,
                MintBatch.chain_id == chain_id,
                MintBatch.signer == signer.lower(),
            )
        )
    return int(count or 0)


def grant(
    chain: ChainClient,
    contracts: list[Contract],
    account: str,
    report: Callable[[RoleChange], None] = lambda _change: None,
) -> list[RoleChange]:
    """Gives ``account`` every role the signer holds for the service, contract by contract."""
    return _apply(chain, contracts, account, grant=True, report=report)


def revoke(
    chain: ChainClient,
    sessions: sessionmaker[Session],
    contracts: list[Contract],
    account: str,
    report: Callable[[RoleChange], None] = lambda _change: None,
) -> list[RoleChange]:
    """Takes every service role from ``account``, a key rotated out. Refused for the key the
    client signs with (the service would lose its own roles) and while ``account`` still has
    unfinished mint batches (they would revert; let the workers finish them first)."""
    if account.lower() == chain.signer_address.lower():
        raise RotationRefused(
            f"{account} is the key this command signs with (FAIRTIX_MINTER_PRIVATE_KEY): "
            "revoke a key only after switching the service to its successor"
        )
    pending = unfinished_batches(sessions, chain.chain_id, account)
    if pending:
        raise RotationRefused(
            f"{pending} mint batch(es) signed by {account} are not finished yet; run the "
            "workers with the new key until they are, then revoke"
        )
    return _apply(chain, contracts, account, grant=False, report=report)


def _apply(
    chain: ChainClient,
    contracts: list[Contract],
    account: str,
    *,
    grant: bool,
    report: Callable[[RoleChange], None],
) -> list[RoleChange]:
    changes = []
    for contract in contracts:
        names = list(contract.roles) if grant else list(reversed(contract.roles))
        for name in names:
            changed = chain.set_role(contract.address, contract.roles[name], account, grant=grant)
            change = RoleChange(contract, name, changed)
            report(change)
            changes.append(change)
    return changes
