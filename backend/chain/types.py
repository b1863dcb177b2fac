"""Value types at the chain boundary.

Callers outside ``backend.chain`` see plain ``str``/``int`` values wrapped in these types and never
web3 objects, so the rest of the backend does not depend on web3's data structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NewType, TypeAlias, TypedDict

# web3's own NewType, so amounts flow into its TxParams without casts.
from web3.types import Wei

TxHash = NewType("TxHash", str)
"""0x-prefixed, lower-case transaction hash."""
Address = NewType("Address", str)
"""EIP-55 checksummed 0x address."""

__all__ = [
    "ABI",
    "Address",
    "Deployment",
    "EventTerms",
    "MintResult",
    "PurchaseLog",
    "TierTerms",
    "TxHash",
    "UnsignedTx",
    "Wei",
]

ABI: TypeAlias = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Deployment:
    """A contract created by a mined transaction."""

    address: Address
    tx_hash: TxHash
    gas_used: int
    block_number: int


@dataclass(frozen=True, slots=True)
class MintResult:
    """One mined ``mintBatch``: the token ids it issued, in recipient order."""

    tx_hash: TxHash
    token_ids: tuple[int, ...]
    block_number: int
    gas_used: int


@dataclass(frozen=True, slots=True)
class TierTerms:
    """A tier as the contract keeps it (TicketTypes.sol TierConfig)."""

    price_wei: int
    """Face price; a whole number of gwei. The resale cap is a multiple of it."""
    supply: int
    per_wallet_limit: int
    """Most primary-sale tickets per wallet, 0-255 (0: no limit)."""
    metadata_digest: bytes
    """The 32-byte SHA-256 digest of the tier metadata's CIDv0: tokenURI is ipfs://<CIDv0>."""


@dataclass(frozen=True, slots=True)
class EventTerms:
    """An event's on-chain terms (TicketTypes.sol EventConfig, minus the backend's roles)."""

    event_id: int
    name: str
    symbol: str
    organizer: str
    sale_start: int
    """Unix seconds: crypto purchases open."""
    sale_end: int
    """Unix seconds: crypto purchases close."""
    event_end: int
    """Unix seconds: resale closes and the organizer may settle escrow."""
    resale_cap_bps: int
    royalty_bps: int
    transfers_locked: bool


class UnsignedTx(TypedDict):
    """A transaction for a wallet to complete (gas, fees, nonce) and sign."""

    to: str
    data: str
    value: int
    chainId: int


@dataclass(frozen=True, slots=True)
class PurchaseLog:
    """One ``Purchased`` log of a TicketEvent: a buyer paid for ``quantity`` tickets with a
    permit whose nonce is our order id."""

    address: Address
    """The TicketEvent that emitted it."""
    block_number: int
    block_hash: str
    """0x-prefixed, lower-case."""
    tx_hash: TxHash
    log_index: int
    nonce: int
    buyer: Address
    tier: int
    quantity: int
    paid: int
    """Wei."""
