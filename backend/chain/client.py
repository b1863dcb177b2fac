"""ChainClient: the backend's one way to send transactions to and read from the ticket contracts.

Every transaction is built and signed locally with the signer's key and sent raw, so the same code
path runs against eth-tester, anvil and a public chain, and no node ever holds a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import EventData, Nonce, TxParams, TxReceipt

from backend.chain.artifacts import Artifact, load_artifact
from backend.chain.errors import (
    ChainError,
    ChainUnavailable,
    ContractRevert,
    RevertDecoder,
    TransactionFailed,
)
from backend.chain.types import Address, Deployment, MintResult, TxHash, Wei

# estimate_gas is exact for the state it ran against; the margin covers state that changes before
# the transaction is mined (e.g. a storage slot another transaction writes first).
GAS_MARGIN_PERCENT = 20


def connect_rpc(rpc_url: str, timeout: float = 10) -> Web3:
    """A ``Web3`` over HTTP JSON-RPC; raises ``ChainUnavailable`` if the node does not answer."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - the probe itself
    except (OSError, ProviderConnectionError) as exc:
        raise ChainUnavailable(rpc_url, str(exc)) from exc
    return w3


def _endpoint(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", None) or type(w3.provider).__name__)


class ChainClient:
    """Deploys the factory, creates event collections and mints tickets.

    Thread-safe: a lock serialises nonce assignment and sending, so API threads and the worker
    can share one client (and one key) without reusing a nonce.

    ``confirmations`` is the number of blocks required on top of the inclusion block before a
    transaction counts as done (0 on a devnet); ``receipt_timeout`` bounds each wait in seconds.
    """

    def __init__(
        self,
        w3: Web3,
        signer: LocalAccount,
        *,
        factory_address: str | None = None,
        confirmations: int = 0,
        receipt_timeout: float = 60,
    ) -> None:
        self._w3 = w3
        self._signer = signer
        self._confirmations = confirmations
        self._receipt_timeout = receipt_timeout
        self._event_artifact = load_artifact("TicketEvent")
        self._factory_artifact = load_artifact("TicketFactory")
        self._decoder = RevertDecoder([self._event_artifact.abi, self._factory_artifact.abi])
        self._factory_address = (
            Web3.to_checksum_address(factory_address) if factory_address else None
        )
        self._send_lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._supports_1559: bool | None = None

    # -- identity ---------------------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            with self._rpc():
                self._chain_id = int(self._w3.eth.chain_id)
        return self._chain_id

    @property
    def signer_address(self) -> Address:
        return Address(self._signer.address)

    @property
    def factory_address(self) -> Address | None:
        return Address(self._factory_address) if self._factory_address else None

    # -- transactions -----------------------------------------------------------------------

    def deploy_factory(self) -> Deployment:
        """Deploys TicketFactory with the signer as admin and event creator; the client then
        uses it for ``create_event``."""
        data = _constructor_data(self._factory_artifact, [self._signer.address])
        receipt = self._transact({"data": data})
        address = receipt["contractAddress"]
        if address is None:
            raise TransactionFailed(_hex(receipt["transactionHash"]), "no contract address")
        self._factory_address = Web3.to_checksum_address(address)
        return Deployment(
            address=Address(self._factory_address),
            tx_hash=_hex(receipt["transactionHash"]),
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
        )

    def create_event(self, event_id: int, name: str, symbol: str, organizer: str) -> Deployment:
        """Deploys the TicketEvent collection for ``event_id`` through the factory, with
        ``organizer`` as its admin and the signer as its minter.

        Raises ``EventAlreadyCreated`` if the event id already has a collection.
        """
        factory = self._factory()
        organizer_address = Web3.to_checksum_address(organizer)
        data = factory.encode_abi(
            "createEvent",
            args=[event_id, name, symbol, organizer_address, self._signer.address],
        )
        receipt = self._transact({"to": factory.address, "data": data})
        logs = self._logs(receipt, factory, "EventCreated")
        if len(logs) != 1:
            raise TransactionFailed(_hex(receipt["transactionHash"]), "no EventCreated log")
        return Deployment(
            address=Address(Web3.to_checksum_address(logs[0]["args"]["ticketEvent"])),
            tx_hash=_hex(receipt["transactionHash"]),
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
        )

    def mint_batch(
        self,
        event_address: str,
        order_id: int,
        recipients: Sequence[str],
        cids: Sequence[str],
    ) -> MintResult:
        """Mints one ticket per recipient for ``order_id``; token ids come from the receipt's
        OrderMinted log, in recipient order.

        Raises ``OrderAlreadyMinted`` if the order was minted before: use ``find_order_mint``
        to recover the earlier result.
        """
        ticket_event = self._ticket_event(event_address)
        data = ticket_event.encode_abi(
            "mintBatch",
            args=[order_id, [Web3.to_checksum_address(r) for r in recipients], list(cids)],
        )
        receipt = self._transact({"to": ticket_event.address, "data": data})
        logs = self._logs(receipt, ticket_event, "OrderMinted")
        if len(logs) != 1:
            raise TransactionFailed(_hex(receipt["transactionHash"]), "no OrderMinted log")
        return _mint_result(logs[0], receipt)

    # -- reads ------------------------------------------------------------------------------

    def find_order_mint(
        self, event_address: str, order_id: int, *, from_block: int = 0
    ) -> MintResult | None:
        """The mint of ``order_id``, recovered from its OrderMinted log, or None if it was never
        mined. Lets a worker that crashed between sending and recording pick up the result."""
        ticket_event = self._ticket_event(event_address)
        with self._rpc():
            logs = list(
                ticket_event.events.OrderMinted().get_logs(
                    argument_filters={"orderId": order_id}, from_block=from_block
                )
            )
            if not logs:
                return None
            receipt = self._w3.eth.get_transaction_receipt(logs[-1]["transactionHash"])
        return _mint_result(logs[-1], receipt)

    def token_uri(self, event_address: str, token_id: int) -> str:
        """``ipfs://<cid>``; raises ``ContractRevert`` ERC721NonexistentToken if never minted."""
        return str(self._call(self._ticket_event(event_address), "tokenURI", token_id))

    def owner_of(self, event_address: str, token_id: int) -> Address:
        owner = self._call(self._ticket_event(event_address), "ownerOf", token_id)
        return Address(Web3.to_checksum_address(owner))

    def order_minted(self, event_address: str, order_id: int) -> bool:
        return bool(self._call(self._ticket_event(event_address), "orderMinted", order_id))

    def event_address(self, event_id: int) -> Address | None:
        """The collection the factory deployed for ``event_id``, or None."""
        address = self._call(self._factory(), "eventAddress", event_id)
        return None if int(address, 16) == 0 else Address(Web3.to_checksum_address(address))

    def block_number(self) -> int:
        """The node's latest block number (health checks, indexer progress)."""
        with self._rpc():
            return int(self._w3.eth.block_number)

    def is_contract(self, address: str) -> bool:
        with self._rpc():
            return len(self._w3.eth.get_code(Web3.to_checksum_address(address))) > 0

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _rpc(self) -> Iterator[None]:
        """Turns transport failures into ``ChainUnavailable`` and reverts into domain errors."""
        try:
            yield
        except ChainError:
            raise
        except ContractLogicError as exc:
            raise self._revert_from(exc, tx_hash=None) from exc
        except (OSError, ProviderConnectionError) as exc:
            raise ChainUnavailable(_endpoint(self._w3), str(exc)) from exc
        except Web3RPCError as exc:
            # The node refused the request (nonce too low, insufficient funds, ...).
            raise TransactionFailed("", exc.message or str(exc)) from exc

    def _revert_from(self, exc: ContractLogicError, tx_hash: str | None) -> ChainError:
        data = exc.data
        if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
            return self._decoder.decode(bytes.fromhex(data[2:]), tx_hash)
        # No revert data at all (e.g. a require without message, or a node that hides it).
        return ContractRevert("execution reverted", (), tx_hash)

    def _call(self, contract: Contract, fn_name: str, *args: Any) -> Any:
        with self._rpc():
            return contract.get_function_by_name(fn_name)(*args).call()

    def _factory(self) -> Contract:
        if self._factory_address is None:
            raise ChainError("no TicketFactory address: deploy it first or pass factory_address")
        return self._w3.eth.contract(address=self._factory_address, abi=self._factory_artifact.abi)

    def _ticket_event(self, address: str) -> Contract:
        return self._w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=self._event_artifact.abi
        )

    def _logs(self, receipt: TxReceipt, contract: Contract, event: str) -> list[EventData]:
        topic = HexBytes(contract.events[event]().topic)
        return [
            contract.events[event]().process_log(log)
            for log in receipt["logs"]
            if log["address"] == contract.address and log["topics"] and log["topics"][0] == topic
        ]

    def _fee_fields(self) -> TxParams:
        if self._supports_1559 is None:
            latest = self._w3.eth.get_block("latest")
            self._supports_1559 = latest.get("baseFeePerGas") is not None
        if not self._supports_1559:
            return {"gasPrice": self._w3.eth.gas_price}
        base_fee = int(self._w3.eth.get_block("latest").get("baseFeePerGas") or 0)
        # web3 falls back to an eth_feeHistory estimate on nodes without eth_maxPriorityFeePerGas.
        priority = int(self._w3.eth.max_priority_fee)
        # Twice the base fee keeps the tx includable through six full blocks of base-fee growth.
        return {"maxPriorityFeePerGas": Wei(priority), "maxFeePerGas": Wei(2 * base_fee + priority)}

    def _transact(self, params: TxParams, *, gas: int | None = None) -> TxReceipt:
        """Signs and sends ``params`` from the signer, waits for the receipt and confirmations,
        and raises the decoded domain error if it reverts. ``gas`` skips estimation."""
        with self._rpc(), self._send_lock:
            tx: TxParams = {
                **params,
                "from": self._signer.address,
                "chainId": self.chain_id,
                "value": Wei(0),
                **self._fee_fields(),
            }
            if gas is None:
                # A revert here surfaces (via _rpc) as the decoded domain error, before any
                # nonce is used.
                gas = self._w3.eth.estimate_gas(tx) * (100 + GAS_MARGIN_PERCENT) // 100
            tx["gas"] = gas
            # The node's pending count catches transactions sent by another process with the
            # same key; the local counter covers ours that the node has not yet seen as pending.
            pending = self._w3.eth.get_transaction_count(self._signer.address, "pending")
            nonce = max(pending, self._next_nonce or 0)
            tx["nonce"] = Nonce(nonce)
            signed = self._signer.sign_transaction(cast(dict[str, Any], tx))
            try:
                tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
            except BaseException:
                # Whether the node saw it is unknown: re-read the pending count next time.
                self._next_nonce = None
                raise
            self._next_nonce = nonce + 1
        return self._wait(tx, _hex(tx_hash))

    def _wait(self, tx: TxParams, tx_hash: TxHash) -> TxReceipt:
        with self._rpc():
            try:
                receipt = self._w3.eth.wait_for_transaction_receipt(
                    HexStr(tx_hash), timeout=self._receipt_timeout
                )
            except TimeExhausted as exc:
                # If the node dropped it, its nonce is free again; recount from the node.
                self._next_nonce = None
                raise TransactionFailed(
                    tx_hash, f"not mined within {self._receipt_timeout:g}s"
                ) from exc
            receipt = self._await_confirmations(receipt, tx_hash)
            if receipt["status"] == 1:
                return receipt
            raise self._explain_failure(tx, tx_hash, receipt)

    def _await_confirmations(self, receipt: TxReceipt, tx_hash: TxHash) -> TxReceipt:
        if self._confirmations <= 0:
            return receipt
        deadline = time.monotonic() + self._receipt_timeout
        while self._w3.eth.block_number < receipt["blockNumber"] + self._confirmations:
            if time.monotonic() > deadline:
                raise TransactionFailed(
                    tx_hash, f"fewer than {self._confirmations} confirmations in time"
                )
            time.sleep(0.5)
        try:
            # Re-read: a reorg may have moved the transaction to another block (or dropped it).
            return self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
        except TransactionNotFound as exc:
            raise TransactionFailed(tx_hash, "dropped by a chain reorganisation") from exc

    def _explain_failure(self, tx: TxParams, tx_hash: TxHash, receipt: TxReceipt) -> ChainError:
        """Replays a failed transaction as a call on the parent block to recover its revert data
        (receipts do not carry it)."""
        replay: TxParams = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value")}  # type: ignore[assignment]
        replay["gas"] = tx["gas"]
        try:
            self._w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
        except ContractLogicError as exc:
            return self._revert_from(exc, tx_hash=tx_hash)
        except Exception:  # the replay only diagnoses; the failure stands either way
            pass
        return TransactionFailed(
            tx_hash, f"status 0 after using {receipt['gasUsed']} of {tx['gas']} gas (out of gas?)"
        )


def _hex(value: bytes | str) -> TxHash:
    return TxHash(HexBytes(value).to_0x_hex().lower())


def _constructor_data(artifact: Artifact, args: Sequence[Any]) -> HexStr:
    constructor = next((e for e in artifact.abi if e["type"] == "constructor"), None)
    types = [i["type"] for i in constructor["inputs"]] if constructor else []
    return HexStr(artifact.bytecode + abi_encode(types, list(args)).hex())


def _mint_result(log: EventData, receipt: TxReceipt) -> MintResult:
    first = int(log["args"]["firstTokenId"])
    quantity = int(log["args"]["quantity"])
    return MintResult(
        tx_hash=_hex(receipt["transactionHash"]),
        token_ids=tuple(range(first, first + quantity)),
        block_number=int(receipt["blockNumber"]),
        gas_used=int(receipt["gasUsed"]),
    )


__all__ = ["ChainClient", "connect_rpc"]
