"""Value types at the chain boundary.

Callers outside ``backend.chain`` see plain ``str``/``int`` values wrapped in these types and never
web3 objects, so the rest of the backend does not depend on web3's data structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NewType, TypeAlias

# web3's own NewType, so amounts flow into its TxParams without casts.
from web3.types import Wei

TxHash = NewType("TxHash", str)
"""0x-prefixed, lower-case transaction hash."""
Address = NewType("Address", str)
"""EIP-55 checksummed 0x address."""

__all__ = ["ABI", "Address", "Deployment", "MintResult", "TxHash", "Wei"]

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
