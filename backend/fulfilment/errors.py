"""Errors of card fulfilment (chain errors stay ``backend.chain.errors``).

FulfilmentError
└── MintNotFound    the contract says an order was minted, but its mint can't be read back
"""

from __future__ import annotations


class FulfilmentError(Exception):
    """Root of every error raised by ``backend.fulfilment``."""


class MintNotFound(FulfilmentError):
    """Raised when ``orderMinted`` is true for an order but no Transfer-from-zero log of its
    first token is found (e.g. a node that prunes old logs): it is retried, never minted again."""

    def __init__(self, order_id: int, contract: str) -> None:
        self.order_id = order_id
        self.contract = contract
        super().__init__(f"order {order_id} is minted on {contract}, but its mint log is not found")
