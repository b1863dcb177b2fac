"""Which paid orders share a mint transaction. Pure: no database, no chain."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.chain.protocol import CardMint


@dataclass(frozen=True, slots=True)
class PendingMint:
    """A paid card order waiting for its tickets, with what its mint needs."""

    order_id: int
    event_id: int
    contract: str
    deploy_block: int
    tier: int
    """The tier's index on chain."""
    buyer: str
    quantity: int
    message_ids: tuple[int, ...] = ()
    """The outbox messages asking for it (normally one), completed when a batch takes it."""

    def card_mint(self) -> CardMint:
        return CardMint(self.order_id, self.tier, (self.buyer,) * self.quantity)


def pack(mints: Iterable[PendingMint], max_recipients: int) -> list[list[PendingMint]]:
    """Groups ``mints`` by event contract and fills batches of at most ``max_recipients``
    tickets, oldest order first. Orders are never split (the contract mints whole orders), so
    one larger than the limit goes alone."""
    by_contract: dict[str, list[PendingMint]] = {}
    for mint in sorted(mints, key=lambda m: m.order_id):
        by_contract.setdefault(mint.contract, []).append(mint)
    batches: list[list[PendingMint]] = []
    for group in by_contract.values():
        current: list[PendingMint] = []
        tickets = 0
        for mint in group:
            if current and tickets + mint.quantity > max_recipients:
                batches.append(current)
                current, tickets = [], 0
            current.append(mint)
            tickets += mint.quantity
        if current:
            batches.append(current)
    return batches
