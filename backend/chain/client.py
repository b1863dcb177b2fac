"""ChainClient: the backend's one way to send transactions to and read from the ticket contracts.

Every transaction is built and signed locally with the signer's key and sent raw, so the same code
path runs against eth-tester, anvil and a public chain, and no node ever holds a key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.exceptions import (
    BlockNotFound,
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
from backend.chain.protocol import (
    PERMIT_TYPES,
    CardMint,
    as_tuple,
    domain,
    encode_mint_batch,
    permit_message,
    token_ids,
)
from backend.chain.types import (
    Address,
    Deployment,
    EventTerms,
    MintResult,
    PurchaseLog,
    TierTerms,
    TxHash,
    UnsignedTx,
    Wei,
)

# estimate_gas is exact for the state it ran against; the margin covers state that changes before
# the transaction is mined (e.g. a storage slot another transaction writes first).
GAS_MARGIN_PERCENT = 20
ZERO_ADDRESS = "0x" + "00" * 20


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

    @property
    def confirmations(self) -> int:
        """Blocks required on top of a block before what it holds counts as final."""
        return self._confirmations

    # -- crypto purchases -------------------------------------------------------------------

    def sign_purchase_permit(
        self,
        event_address: str,
        buyer: str,
        tier: int,
        quantity: int,
        unit_price_wei: int,
        nonce: int,
        deadline: int,
    ) -> tuple[dict[str, Any], str]:
        """The EIP-712 ``PurchasePermit`` message and the signer's signature over it (0x hex).

        The signer holds SIGNER_ROLE on every event it created. Signing is deterministic
        (RFC 6979), so the same permit always carries the same signature.
        """
        message = permit_message(
            Web3.to_checksum_address(buyer), tier, quantity, unit_price_wei, nonce, deadline
        )
        typed = encode_typed_data(
            domain_data=domain(self.chain_id, Web3.to_checksum_address(event_address)),
            message_types=PERMIT_TYPES,
            message_data=message,
        )
        signed = self._signer.sign_message(typed)
        return message, HexBytes(signed.signature).to_0x_hex()

    def purchase_transaction(
        self, event_address: str, permit: Mapping[str, Any], signature: str, value: int
    ) -> UnsignedTx:
        """The unsigned ``purchase(permit, signature)`` call paying ``value`` wei; the buyer's
        wallet adds gas, fees and its nonce."""
        ticket_event = self._ticket_event(event_address)
        args = as_tuple(dict(permit), PERMIT_TYPES["PurchasePermit"])
        data = ticket_event.encode_abi("purchase", args=[args, HexBytes(signature)])
        return UnsignedTx(
            to=ticket_event.address, data=str(data), value=value, chainId=self.chain_id
        )

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

    def create_event(self, terms: EventTerms, tiers: Sequence[TierTerms]) -> Deployment:
        """Creates the TicketEvent clone for ``terms.event_id`` through the factory. The signer
        becomes its admin, minter and permit signer; the organizer gets ORGANIZER_ROLE and the
        royalties. No scanner yet: the admin grants SCANNER_ROLE when door staff are known, which
        keeps a role grant (about 24,000 gas) out of every event's creation.

        Raises ``EventAlreadyCreated`` if the event id already has a collection.
        """
        factory = self._factory()
        signer = self._signer.address
        config = (
            terms.event_id,
            terms.name,
            terms.symbol,
            signer,
            Web3.to_checksum_address(terms.organizer),
            signer,
            signer,
            ZERO_ADDRESS,
            terms.sale_start,
            terms.sale_end,
            terms.event_end,
            terms.resale_cap_bps,
            terms.royalty_bps,
            terms.transfers_locked,
        )
        tier_configs = [
            (t.price_wei, t.supply, t.per_wallet_limit, t.metadata_digest) for t in tiers
        ]
        data = factory.encode_abi("createEvent", args=[config, tier_configs])
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

    def mint_batch(self, event_address: str, orders: Sequence[CardMint]) -> MintResult:
        """Mints card orders in one transaction; order ``o``'s recipient ``i`` receives token
        ``o.order_id * 256 + i``. ``token_ids`` lists every minted id, order by order.

        Raises ``OrderAlreadyMinted`` if any order was minted before (nothing is minted then):
        use ``find_order_mint`` to recover the earlier result.
        """
        ticket_event = self._ticket_event(event_address)
        data = ticket_event.encode_abi("mintBatch", args=[encode_mint_batch(orders)])
        receipt = self._transact({"to": ticket_event.address, "data": data})
        return MintResult(
            tx_hash=_hex(receipt["transactionHash"]),
            token_ids=tuple(
                token_id for o in orders for token_id in token_ids(o.order_id, len(o.recipients))
            ),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )

    # -- reads ------------------------------------------------------------------------------

    def find_order_mint(
        self, event_address: str, order_id: int, quantity: int, *, from_block: int = 0
    ) -> MintResult | None:
        """The mint of ``order_id``, recovered from its first token's Transfer-from-zero log, or
        None if it was never mined. Lets a worker that crashed between sending and recording pick
        up the result."""
        ticket_event = self._ticket_event(event_address)
        first = token_ids(order_id, quantity)[0]
        with self._rpc():
            logs = list(
                ticket_event.events.Transfer().get_logs(
                    argument_filters={"from": ZERO_ADDRESS, "tokenId": first},
                    from_block=from_block,
                )
            )
            if not logs:
                return None
            receipt = self._w3.eth.get_transaction_receipt(logs[-1]["transactionHash"])
        return MintResult(
            tx_hash=_hex(receipt["transactionHash"]),
            token_ids=token_ids(order_id, quantity),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )

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

    def block_hash(self, number: int) -> str | None:
        """The hash (0x, lower-case) of the canonical block ``number``, or None if the chain is
        not that long (any more)."""
        with self._rpc():
            try:
                block = self._w3.eth.get_block(number)
            except BlockNotFound:
                return None
        block_hash = block.get("hash")
        return None if block_hash is None else _hex(block_hash)

    def purchases(
        self, event_address: str | Sequence[str], from_block: int, to_block: int
    ) -> list[PurchaseLog]:
        """The ``Purchased`` logs of one or more TicketEvents in blocks ``from_block`` to
        ``to_block`` (inclusive), in chain order."""
        addresses = [event_address] if isinstance(event_address, str) else list(event_address)
        if not addresses or to_block < from_block:
            return []
        decoder = self._w3.eth.contract(abi=self._event_artifact.abi).events.Purchased()
        with self._rpc():
            raw = self._w3.eth.get_logs(
                {
                    "address": [Web3.to_checksum_address(a) for a in addresses],
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": [HexStr(decoder.topic)],
                }
            )
        records = []
        for log in raw:
            event = decoder.process_log(log)
            args = event["args"]
            records.append(
                PurchaseLog(
                    address=Address(Web3.to_checksum_address(event["address"])),
                    block_number=int(event["blockNumber"]),
                    block_hash=_hex(event["blockHash"]),
                    tx_hash=_hex(event["transactionHash"]),
                    log_index=int(event["logIndex"]),
                    nonce=int(args["nonce"]),
                    buyer=Address(Web3.to_checksum_address(args["buyer"])),
                    tier=int(args["tierId"]),
                    quantity=int(args["quantity"]),
                    paid=int(args["paid"]),
                )
            )
        records.sort(key=lambda r: (r.block_number, r.log_index))
        return records

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


__all__ = ["ChainClient", "connect_rpc"]
