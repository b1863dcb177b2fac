"""Errors raised by the chain boundary.

Every error carries the fields a caller needs to act on it; messages are built from those fields.

    ChainError
    ├── ChainUnavailable          the JSON-RPC endpoint did not answer
    ├── WrongChain                the endpoint serves another chain id than expected
    ├── TransactionFailed         a mined transaction failed without a decodable reason
    ├── ContractRevert            a call or transaction reverted with a decoded error
    │   ├── OrderAlreadyMinted    mintBatch: the order id was minted before
    │   ├── EventAlreadyCreated   createEvent: the event id has a collection
    │   ├── SalesClosed           paused, not started, ended, cancelled or settled
    │   ├── SoldOut               not enough tickets left in the tier
    │   ├── WalletLimitReached    the wallet holds the tier's per-wallet maximum
    │   ├── PermitRejected        a purchase permit is expired, used, foreign or badly signed
    │   ├── PaymentMismatch       the ether sent is not the exact price
    │   ├── ResaleRejected        a sell order is expired, void, above the cap or badly signed
    │   ├── TicketUnavailable     the ticket is used, locked, burned, or not the caller's
    │   ├── RefundRejected        nothing to refund or withdraw
    │   ├── NotAuthorized         the sender lacks the role or approval
    │   └── InvalidChainInput     arguments the contract refuses (config, batch encoding, ids)
    ├── DevnetError               the local anvil devnet could not be found, started or reused
    ├── ArtifactMissing           a compiled contract artifact is not on disk
    ├── StaleArtifact             committed artifacts differ from a fresh compile
    └── CompilationFailed         solc reported errors

Reverts are decoded by matching the 4-byte selector of the revert data against the ``error``
entries of the contract ABIs, never by reading node-specific message strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from backend.chain.types import ABI


class ChainError(Exception):
    """Root of every error raised by ``backend.chain``."""


class ChainUnavailable(ChainError):
    """Raised when the JSON-RPC endpoint cannot be reached or does not answer."""

    def __init__(self, rpc_url: str, detail: str = "") -> None:
        self.rpc_url = rpc_url
        self.detail = detail
        suffix = f": {detail}" if detail else ""
        super().__init__(f"chain node at {rpc_url} is unavailable{suffix}")


class WrongChain(ChainError):
    """Raised when the node serves a different chain id than the one configured."""

    def __init__(self, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(f"expected chain id {expected}, the node reports {got}")


class TransactionFailed(ChainError):
    """Raised when a transaction was mined with status 0 and no decodable revert reason,
    or could not be sent or confirmed at all (``tx_hash`` is then empty)."""

    def __init__(self, tx_hash: str, reason: str) -> None:
        self.tx_hash = tx_hash
        self.reason = reason
        where = f"transaction {tx_hash}" if tx_hash else "transaction"
        super().__init__(f"{where} failed: {reason}")


class ContractRevert(ChainError):
    """Raised when a contract reverts with a custom error, ``Error(string)`` or ``Panic(uint256)``.

    ``name`` is the Solidity error name and ``error_args`` its decoded arguments, in ABI order
    (``Exception.args`` keeps holding the message). ``tx_hash`` is set when the revert happened
    in a mined transaction rather than in gas estimation.
    """

    def __init__(self, name: str, args: Sequence[Any], tx_hash: str | None = None) -> None:
        self.name = name
        self.error_args = tuple(args)
        self.tx_hash = tx_hash
        rendered = ", ".join(_render(a) for a in self.error_args)
        super().__init__(f"contract reverted with {name}({rendered})")


class OrderAlreadyMinted(ContractRevert):
    """Raised when ``mintBatch`` is called with an order id that was minted before."""

    def __init__(self, order_id: int, tx_hash: str | None = None) -> None:
        self.order_id = order_id
        super().__init__("OrderAlreadyMinted", (order_id,), tx_hash)


class EventAlreadyCreated(ContractRevert):
    """Raised when ``createEvent`` is called for an event id that already has a collection."""

    def __init__(self, event_id: int, address: str, tx_hash: str | None = None) -> None:
        self.event_id = event_id
        self.address = address
        super().__init__("EventAlreadyCreated", (event_id, address), tx_hash)


class SalesClosed(ContractRevert):
    """Raised when sales are paused, not yet open, over, or the event is cancelled or settled."""


class SoldOut(ContractRevert):
    """Raised when a tier has fewer tickets left than asked for (``TierSoldOut``)."""


class WalletLimitReached(ContractRevert):
    """Raised when a wallet already holds the most primary-sale tickets its tier allows."""


class PermitRejected(ContractRevert):
    """Raised when a purchase permit is expired, already used, for another buyer, or not signed
    by the event's signer (including malformed and malleable signatures)."""


class PaymentMismatch(ContractRevert):
    """Raised when the ether sent differs from the exact price (``WrongPayment``)."""


class ResaleRejected(ContractRevert):
    """Raised when a sell order is expired, filled or cancelled, above the price cap, not signed
    by the owner, bought by its own seller, or the event's resale window has closed."""


class TicketUnavailable(ContractRevert):
    """Raised when a ticket is used, missing or burned, locked against transfers, or not owned
    by the caller."""


class RefundRejected(ContractRevert):
    """Raised when there is nothing to refund, withdraw or settle, or a payout failed."""


class NotAuthorized(ContractRevert):
    """Raised when the sender lacks the role (AccessControl) or the approval (ERC-721)."""


class InvalidChainInput(ContractRevert):
    """Raised when the contract refuses its arguments: event or tier configuration, batch
    encoding, order ids, quantities, zero addresses."""


class DevnetError(ChainError):
    """Raised when the anvil devnet binary is missing, fails to start, or its port is taken by
    something that is not a reusable anvil devnet."""


class ArtifactMissing(ChainError):
    """Raised when a contract artifact is not found in the build directory."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        super().__init__(
            f"artifact for {name} not found at {path}; run `python scripts/compile.py`"
        )


class StaleArtifact(ChainError):
    """Raised when committed artifacts differ from what the sources compile to."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(
            f"stale contract artifacts: {', '.join(self.names)}; run `python scripts/compile.py`"
        )


class CompilationFailed(ChainError):
    """Raised when solc reports errors (or cannot be run at all)."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("Solidity compilation failed:\n" + "\n".join(self.errors))


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value) if isinstance(value, str) else str(value)


_SPECIFIC: dict[str, type[ContractRevert]] = {
    "OrderAlreadyMinted": OrderAlreadyMinted,
    "EventAlreadyCreated": EventAlreadyCreated,
}

# Every other custom error of TicketEvent, TicketFactory and the OpenZeppelin code they run,
# by family. tests/chain/test_errors.py fails if an error in the ABIs is missing here.
ERROR_FAMILIES: dict[str, type[ContractRevert]] = {
    **dict.fromkeys(
        (
            "SalesArePaused",
            "SaleNotStarted",
            "SaleEnded",
            "EventIsCancelled",
            "EventAlreadySettled",
            "EventNotCancelled",
            "EventNotOver",
            "EventEnded",
        ),
        SalesClosed,
    ),
    "TierSoldOut": SoldOut,
    "WalletLimitExceeded": WalletLimitReached,
    **dict.fromkeys(
        (
            "PermitNotForCaller",
            "PermitExpired",
            "PermitAlreadyUsed",
            "PermitIsRevoked",
            "InvalidPermitSigner",
            "ECDSAInvalidSignature",
            "ECDSAInvalidSignatureLength",
            "ECDSAInvalidSignatureS",
        ),
        PermitRejected,
    ),
    "WrongPayment": PaymentMismatch,
    **dict.fromkeys(
        (
            "SellOrderExpired",
            "SellOrderInvalidated",
            "SellOrderSignerNotOwner",
            "SellOrderNotForRecipient",
            "GiftWithoutBuyer",
            "PriceAboveCap",
            "BuyerIsSeller",
            "ResaleClosed",
        ),
        ResaleRejected,
    ),
    **dict.fromkeys(
        (
            "TicketAlreadyUsed",
            "TransfersLocked",
            "NotTicketOwner",
            "ERC721NonexistentToken",
            "ERC721IncorrectOwner",
            "ERC721InvalidOwner",
        ),
        TicketUnavailable,
    ),
    **dict.fromkeys(
        (
            "NotRefundable",
            "NothingToWithdraw",
            "PaymentFailed",
            "RefundPeriodOver",
            "RefundPeriodNotOver",
        ),
        RefundRejected,
    ),
    **dict.fromkeys(
        (
            "AccessControlUnauthorizedAccount",
            "AccessControlBadConfirmation",
            "NotFactory",
            "ERC721InsufficientApproval",
            "ERC721InvalidApprover",
            "ERC721InvalidOperator",
        ),
        NotAuthorized,
    ),
    **dict.fromkeys(
        (
            "AlreadyInitialized",
            "ZeroAddressForRole",
            "InvalidSchedule",
            "RoyaltyTooHigh",
            "InvalidTierId",
            "UnknownTier",
            "InvalidPrice",
            "SupplyBelowIssued",
            "TotalSupplyTooLarge",
            "MissingMetadata",
            "MalformedBatch",
            "InvalidQuantity",
            "OrderIdTooLarge",
            "CheckInLengthMismatch",
            "ERC721InvalidSender",
            "ERC721InvalidReceiver",
            "FailedDeployment",
            "InsufficientBalance",
            "ReentrancyGuardReentrantCall",
            "InvalidShortString",
            "StringTooLong",
        ),
        InvalidChainInput,
    ),
}

# Solidity's built-in revert payloads, which never appear in an ABI.
_BUILTIN_ERRORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Error", ("string",)),
    ("Panic", ("uint256",)),
)


class RevertDecoder:
    """Maps revert data to domain errors using the ``error`` entries of the given ABIs."""

    def __init__(self, abis: Iterable[ABI]) -> None:
        self._by_selector: dict[bytes, tuple[str, tuple[str, ...]]] = {}
        for name, types in _BUILTIN_ERRORS:
            self._add(name, types)
        for abi in abis:
            for entry in abi:
                if entry.get("type") == "error":
                    types = tuple(_canonical_type(i) for i in entry.get("inputs", []))
                    self._add(entry["name"], types)

    def _add(self, name: str, types: tuple[str, ...]) -> None:
        signature = f"{name}({','.join(types)})"
        self._by_selector[function_signature_to_4byte_selector(signature)] = (name, types)

    def decode(self, data: bytes, tx_hash: str | None = None) -> ContractRevert:
        """Decodes ``data`` (selector + ABI-encoded args) into the matching ``ContractRevert``.

        Unknown selectors and undecodable payloads still yield a ``ContractRevert`` whose name
        is the selector in hex, so no revert is ever silently dropped.
        """
        selector, payload = data[:4], data[4:]
        known = self._by_selector.get(selector)
        if known is None:
            return ContractRevert("0x" + selector.hex(), (payload,), tx_hash)
        name, types = known
        try:
            args = abi_decode(list(types), payload)
        except DecodingError:
            return ContractRevert(name, (payload,), tx_hash)
        args = tuple(_normalise(t, a) for t, a in zip(types, args, strict=True))
        specific = _SPECIFIC.get(name)
        if specific is not None:
            return specific(*args, tx_hash=tx_hash)  # type: ignore[misc]  # args match by ABI
        return ERROR_FAMILIES.get(name, ContractRevert)(name, args, tx_hash)


def _canonical_type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _normalise(abi_type: str, value: Any) -> Any:
    # eth_abi yields lower-case addresses; domain errors carry checksummed ones like the rest
    # of the boundary does.
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    return value
