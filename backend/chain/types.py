"""Value types at the chain boundary.

Callers outside ``backend.chain`` see plain ``str``/``int`` values wrapped in these types and never
web3 objects, so the rest of the backend does not depend on web3's data structures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NewType, TypeAlias, TypedDict

# web3's own NewType, so amounts flow into its TxParams without casts.
from web3.types import Wei

TxHash = NewType("TxHash", str)
"""0x-prefixed, lower-case transaction hash."""
Address = NewType("Address", str)
"""EIP-55 checksummed 0x address."""

__all__ = [
    "ABI",
    "CHECK_IN",
    "LOG_KINDS",
    "ORDERS_CANCELLED",
    "PURCHASE",
    "REFUND",
    "RESALE",
    "TRANSFER",
    "TRANSFER_POLICY",
    "Address",
    "ChainLog",
    "CheckInLog",
    "Deployment",
    "EventTerms",
    "Fees",
    "MinedTx",
    "MintResult",
    "PurchaseLog",
    "RefundLog",
    "ResaleLog",
    "SellOrdersCancelledLog",
    "SignedTx",
    "TicketState",
    "TierTerms",
    "TransferLog",
    "TransferPolicyLog",
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
class CheckIn:
    """A ticket the door admitted, and the wallet it was admitted for."""

    token_id: int
    holder: str


@dataclass(frozen=True, slots=True)
class CheckInResult:
    """What one ``check_in`` came to: tickets marked used by its transaction (``tx_hash``,
    None if nothing was sent), tickets the chain had marked used already, and tickets it did
    not mark (``skipped``: held by another wallet than the door admitted, burned or
    nonexistent, or the event cancelled)."""

    tx_hash: TxHash | None
    checked_in: tuple[int, ...]
    already_used: tuple[int, ...]
    skipped: tuple[int, ...]
    gas_used: int
    block_number: int | None


@dataclass(frozen=True, slots=True)
class Fees:
    """What a transaction offers per unit of gas: EIP-1559 caps, or a legacy ``gas_price`` on
    chains without a base fee (then both caps are None)."""

    max_fee_per_gas: Wei | None = None
    max_priority_fee_per_gas: Wei | None = None
    gas_price: Wei | None = None

    def bumped(self, percent: float, floor: Fees | None = None) -> Fees:
        """Every price raised by at least ``percent`` (rounded up), and never below ``floor``
        (the market's price now). Nodes accept a replacement for a pending nonce only if it
        pays more on every price (geth: +10%, others: +12.5%)."""

        def up(value: Wei | None, market: Wei | None) -> Wei | None:
            if value is None:  # a field this kind of transaction does not carry
                return None
            raised = -(-value * int(percent * 100 + 10_000) // 10_000)
            return Wei(max(raised, value + 1, market or 0))

        market = floor or Fees()
        return Fees(
            max_fee_per_gas=up(self.max_fee_per_gas, market.max_fee_per_gas),
            max_priority_fee_per_gas=up(
                self.max_priority_fee_per_gas, market.max_priority_fee_per_gas
            ),
            gas_price=up(self.gas_price, market.gas_price),
        )

    def capped(self, ceiling: Wei) -> Fees:
        """No price above ``ceiling`` (and the tip never above the fee cap): what the operator
        is willing to pay per gas at most, however high the market goes."""

        def cap(value: Wei | None) -> Wei | None:
            return None if value is None else Wei(min(value, ceiling))

        max_fee = cap(self.max_fee_per_gas)
        priority = cap(self.max_priority_fee_per_gas)
        if max_fee is not None and priority is not None:
            priority = Wei(min(priority, max_fee))
        return Fees(max_fee, priority, cap(self.gas_price))

    def outbids(self, other: Fees) -> bool:
        """Whether this pays more than ``other`` on every price: a replacement that doesn't
        is refused by every node."""
        pairs = [
            (self.max_fee_per_gas, other.max_fee_per_gas),
            (self.max_priority_fee_per_gas, other.max_priority_fee_per_gas),
            (self.gas_price, other.gas_price),
        ]
        for mine, theirs in pairs:
            if (mine is None) != (theirs is None):
                return False
            if mine is not None and theirs is not None and mine <= theirs:
                return False
        return True


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A transaction signed by the backend's key and not necessarily sent: ``raw`` (0x hex) is
    what ``eth_sendRawTransaction`` takes, so it can be stored first and broadcast again."""

    tx_hash: TxHash
    raw: str
    nonce: int
    gas: int
    fees: Fees


@dataclass(frozen=True, slots=True)
class MinedTx:
    """A transaction's receipt: it is in block ``block_number``; ``succeeded`` is its status."""

    tx_hash: TxHash
    succeeded: bool
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
class TicketState:
    """A ticket as the contract keeps it (TicketEvent.ticket)."""

    tier: int
    used: bool
    """Checked in: it can't be resold or moved any more."""
    paid_wei: int
    sale_nonce: int
    """The nonce a sell order for it must carry now; every move or cancellation bumps it."""


# The kinds of TicketEvent log the indexer follows (``ChainLog.kind``, ``AppliedLog.kind``).
PURCHASE, REFUND, TRANSFER = "purchase", "refund", "transfer"
RESALE, ORDERS_CANCELLED, CHECK_IN = "resale", "orders_cancelled", "check_in"
TRANSFER_POLICY = "transfer_policy"
LOG_KINDS = frozenset(
    {PURCHASE, REFUND, TRANSFER, RESALE, ORDERS_CANCELLED, CHECK_IN, TRANSFER_POLICY}
)


@dataclass(frozen=True, slots=True)
class PurchaseLog:
    """One ``Purchased`` log of a TicketEvent: a buyer paid for ``quantity`` tickets with a
    permit whose nonce is our order id."""

    kind: ClassVar[str] = PURCHASE
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


@dataclass(frozen=True, slots=True)
class RefundLog:
    """One ``RefundClaimed`` log: the holder of a crypto-paid ticket of a cancelled event took
    back what its buyer paid, and the ticket was burned."""

    kind: ClassVar[str] = REFUND
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    token_id: int
    owner: Address
    """Who claimed (the ticket's holder then, not necessarily its buyer)."""
    amount: int
    """Wei."""


@dataclass(frozen=True, slots=True)
class TransferLog:
    """One ERC-721 ``Transfer`` between two wallets (a resale or a direct transfer). Mints and
    burns are not reported as transfers: their own logs (purchase, mint, refund) cover them."""

    kind: ClassVar[str] = TRANSFER
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    token_id: int
    sender: Address
    recipient: Address


@dataclass(frozen=True, slots=True)
class ResaleLog:
    """One ``Resold`` log: a sell order signed by ``seller`` was filled by ``buyer`` at ``price``
    wei, ``royalty`` of it credited to the organizer and the rest to ``payee``. The same
    transaction's Transfer log moves the ticket; this one says it was a sale, and at what price."""

    kind: ClassVar[str] = RESALE
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    token_id: int
    seller: Address
    buyer: Address
    price: int
    """Wei."""
    royalty: int
    """Wei."""
    payee: Address
    """Who the seller's proceeds went to, which tells the rail the seller chose: the seller
    (paid in ether on chain) or the backend's treasury (the backend pays the seller by card)."""


@dataclass(frozen=True, slots=True)
class SellOrdersCancelledLog:
    """One ``SellOrdersCancelled`` log: the holder voided every sell order signed for the
    ticket; from now on an order must carry ``new_nonce``."""

    kind: ClassVar[str] = ORDERS_CANCELLED
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    token_id: int
    new_nonce: int


@dataclass(frozen=True, slots=True)
class CheckInLog:
    """One ``CheckedIn`` log: the ticket was scanned at the door; it can't move any more."""

    kind: ClassVar[str] = CHECK_IN
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    token_id: int
    owner: Address


@dataclass(frozen=True, slots=True)
class TransferPolicyLog:
    """One ``TransferPolicyChanged`` log: the organizer locked or unlocked direct transfers of
    the event's tickets (``setTransfersLocked``, sent from their own wallet)."""

    kind: ClassVar[str] = TRANSFER_POLICY
    address: Address
    block_number: int
    block_hash: str
    tx_hash: TxHash
    log_index: int
    locked: bool


ChainLog: TypeAlias = (
    PurchaseLog
    | RefundLog
    | TransferLog
    | ResaleLog
    | SellOrdersCancelledLog
    | CheckInLog
    | TransferPolicyLog
)
"""A TicketEvent log the indexer applies."""
