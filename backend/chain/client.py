"""ChainClient: the backend's one way to send transactions to and read from the ticket contracts.

Every transaction is built and signed locally with the signer's key and sent raw, so the same code
path runs against eth-tester, anvil and a public chain, and no node ever holds a key.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import lru_cache
from typing import Any, cast

from eth_abi.abi import encode as abi_encode
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from hexbytes import HexBytes
from web3 import HTTPProvider, JSONBaseProvider, Web3
from web3._utils.batching import sort_batch_response_by_response_ids
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3._utils.method_formatters import log_entry_formatter
from web3.contract import Contract
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import EventData, Nonce, RPCEndpoint, RPCResponse, TxParams, TxReceipt

from backend.chain.artifacts import Artifact, load_artifact
from backend.chain.errors import (
    ChainError,
    ChainUnavailable,
    ContractRevert,
    RevertDecoder,
    SalesClosed,
    TransactionFailed,
)
from backend.chain.keepalive import async_poster_for, poster_for
from backend.chain.protocol import (
    PERMIT_TYPES,
    SELL_ORDER_TYPES,
    CardMint,
    as_tuple,
    domain,
    encode_mint_batch,
    permit_message,
    recover_signer,
    sell_order_signable,
    sell_order_typed_data,
    token_ids,
)
from backend.chain.types import (
    CHECK_IN,
    LOG_KINDS,
    ORDERS_CANCELLED,
    PURCHASE,
    REFUND,
    RESALE,
    TRANSFER,
    TRANSFER_POLICY,
    Address,
    ChainLog,
    CheckIn,
    CheckInLog,
    CheckInResult,
    Deployment,
    EventTerms,
    Fees,
    MinedTx,
    MintResult,
    PurchaseLog,
    RefundLog,
    ResaleLog,
    SellOrdersCancelledLog,
    SignedTx,
    TicketState,
    TierTerms,
    TransferLog,
    TransferPolicyLog,
    TxHash,
    UnsignedTx,
    Wei,
)
from backend.observability import instruments

# estimate_gas is exact for the state it ran against; the margin covers state that changes before
# the transaction is mined (e.g. a storage slot another transaction writes first).
GAS_MARGIN_PERCENT = 20
ZERO_ADDRESS = "0x" + "00" * 20
# The contracts' AccessControl roles (TicketEvent; EVENT_CREATOR_ROLE is TicketFactory's).
DEFAULT_ADMIN_ROLE = b"\x00" * 32
ORGANIZER_ROLE = Web3.keccak(text="ORGANIZER_ROLE")
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
SIGNER_ROLE = Web3.keccak(text="SIGNER_ROLE")
SCANNER_ROLE = Web3.keccak(text="SCANNER_ROLE")
RELAYER_ROLE = Web3.keccak(text="RELAYER_ROLE")
EVENT_CREATOR_ROLE = Web3.keccak(text="EVENT_CREATOR_ROLE")
# A log topic holding the zero address: the ``from`` of a mint, the ``to`` of a burn. Raw
# JSON-RPC hex, as ``ticket_logs`` compares it before web3 has formatted the log.
_ZERO_TOPIC = "0x" + "00" * 32
# Selectors of the two views ``holder_and_state`` calls raw (0x hex, as eth_call's data starts).
_OWNER_OF = Web3.keccak(text="ownerOf(uint256)")[:4].to_0x_hex()
_TICKET = Web3.keccak(text="ticket(uint256)")[:4].to_0x_hex()


class CountingHTTPProvider(HTTPProvider):
    """HTTPProvider that counts failed calls (fairtix_chain_rpc_errors_total): ``transport``
    when the node did not answer, ``error`` when it answered with a JSON-RPC error (a revert
    found by eth_estimateGas or eth_call is one too, and expected now and then)."""

    def __init__(self, endpoint_uri: str, **kwargs: Any) -> None:
        super().__init__(endpoint_uri, **kwargs)
        options = dict(kwargs.get("request_kwargs") or {})
        self._poster = poster_for(endpoint_uri, options)
        self.async_poster = async_poster_for(endpoint_uri, options)

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            response = super().make_request(method, params)
        except Exception:
            instruments.CHAIN_RPC_ERRORS.labels(str(method), "transport").inc()
            raise
        if "error" in response:
            instruments.CHAIN_RPC_ERRORS.labels(str(method), "error").inc()
        return response

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        """As HTTPProvider's, over a kept-alive connection of this thread where that does what
        requests would (backend.chain.keepalive): every listing request sends one."""
        if self._poster is None:
            return super().make_batch_request(batch_requests)
        try:
            raw = self._poster.post(self.encode_batch_rpc_request(batch_requests))
        except Exception:
            instruments.CHAIN_RPC_ERRORS.labels("batch", "transport").inc()
            raise
        response = self.decode_rpc_response(raw)
        if not isinstance(response, list):
            return response  # one error for the whole batch (a node that takes none)
        return cast(list[RPCResponse], sort_batch_response_by_response_ids(response))


def _holder_and_state_batch(event_address: str, token_id: int) -> list[tuple[RPCEndpoint, Any]]:
    """``ownerOf`` and ``ticket`` of one token as two raw ``eth_call``s, calldata by hand."""
    to = _checksum(event_address)
    word = token_id.to_bytes(32, "big").hex()
    calls = [{"to": to, "data": selector + word} for selector in (_OWNER_OF, _TICKET)]
    return [(RPCEndpoint("eth_call"), [call, "latest"]) for call in calls]


class AsyncReadUnavailable(Exception):
    """The chain can't be read from the event loop here: take the blocking path."""


def connect_rpc(rpc_url: str, timeout: float = 10) -> Web3:
    """A ``Web3`` over HTTP JSON-RPC; raises ``ChainUnavailable`` if the node does not answer."""
    w3 = Web3(CountingHTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - the probe itself
    except (OSError, ProviderConnectionError) as exc:
        raise ChainUnavailable(rpc_url, str(exc)) from exc
    return w3


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    """An event contract's address checksummed (a keccak of it each time, three times per
    listing request): the events are few."""
    return Web3.to_checksum_address(address)


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
        self._nonce_floor: Callable[[], AbstractContextManager[int]] | None = None
        self._chain_id: int | None = None
        self._supports_1559: bool | None = None
        # web3 builds a contract class per eth.contract() call (ABI parsing included): about a
        # millisecond each, paid on every mint batch and log read. One per address is enough.
        self._ticket_events: dict[str, Contract] = {}
        self._event_events = self._w3.eth.contract(abi=self._event_artifact.abi).events
        # Events whose SCANNER_ROLE the signer is known to hold: asked of the chain once each.
        self._scanner_on: set[str] = set()

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

    # -- resale -----------------------------------------------------------------------------
    # A sell order's fields are named once, in backend.chain.protocol (SELL_ORDER_TYPES,
    # sell_order_message); these take the message as built there.

    def sell_order_typed_data(
        self, event_address: str, message: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The EIP-712 document the holder's wallet signs for ``message`` on this chain."""
        return sell_order_typed_data(self.chain_id, _checksum(event_address), dict(message))

    def sell_order_signer(
        self, event_address: str, message: Mapping[str, Any], signature: str
    ) -> Address | None:
        """Who signed the sell order (lowercase hex), or None if ``signature`` is no signature
        the contract's ECDSA check would take (protocol.recover_signer: wrong length, a high
        ``s``, a ``v`` other than 27 or 28)."""
        signable = sell_order_signable(self.chain_id, _checksum(event_address), dict(message))
        try:
            raw = bytes.fromhex(signature.removeprefix("0x"))
        except ValueError:
            return None
        signer = recover_signer(signable, raw)
        return Address(signer) if signer is not None else None

    def buy_resale_transaction(
        self, event_address: str, order: Mapping[str, Any], signature: str
    ) -> UnsignedTx:
        """The unsigned ``buyResale(order, signature)`` call paying exactly the order's price,
        for the buyer's wallet to complete and send."""
        ticket_event = self._ticket_event(event_address)
        args = as_tuple(dict(order), SELL_ORDER_TYPES["SellOrder"])
        data = ticket_event.encode_abi("buyResale", args=[args, HexBytes(signature)])
        return UnsignedTx(
            to=ticket_event.address,
            data=str(data),
            value=int(order["price"]),
            chainId=self.chain_id,
        )

    def estimate_buy_resale_for(
        self,
        event_address: str,
        order: Mapping[str, Any],
        signature: str,
        recipient: str,
        value: int,
    ) -> int:
        """The gas limit for the relayer's ``buyResaleFor``: the node's estimate plus a margin.
        Sends nothing; raises the decoded revert (e.g. ``ResaleRejected`` SellOrderInvalidated
        when the ticket was sold meanwhile) if it would fail now."""
        call = self._buy_resale_for_call(event_address, order, signature, recipient, value)
        with self._rpc():
            estimate = self._w3.eth.estimate_gas(call)
        return estimate * (100 + GAS_MARGIN_PERCENT) // 100

    def sign_buy_resale_for(
        self,
        event_address: str,
        order: Mapping[str, Any],
        signature: str,
        recipient: str,
        value: int,
        *,
        nonce: int,
        gas: int,
        fees: Fees,
    ) -> SignedTx:
        """``buyResaleFor(order, signature, recipient)`` from the relayer, signed with ``nonce``,
        ready to store and to send (again), as ``sign_mint_batch``."""
        call = self._buy_resale_for_call(event_address, order, signature, recipient, value)
        return self._sign_stored(call, nonce=nonce, gas=gas, fees=fees)

    def explain_resale_failure(
        self,
        event_address: str,
        order: Mapping[str, Any],
        signature: str,
        recipient: str,
        value: int,
        mined: MinedTx,
        gas: int,
    ) -> ChainError:
        """Why a mined ``buyResaleFor`` failed: the decoded revert of its replay on the parent
        block (e.g. ``ResaleRejected`` SellOrderInvalidated: the ticket went to someone else
        first), or ``TransactionFailed`` if there is none (out of gas)."""
        call = self._buy_resale_for_call(event_address, order, signature, recipient, value)
        tx: TxParams = {**call, "gas": gas}
        with self._rpc():
            return self._replay_failure(tx, mined.tx_hash, mined.block_number, mined.gas_used)

    def credit_of(self, event_address: str, account: str) -> int:
        """Wei the contract holds for ``account`` to ``withdraw`` (resale proceeds)."""
        ticket_event = self._ticket_event(event_address)
        return int(self._call(ticket_event, "creditOf", Web3.to_checksum_address(account)))

    def _buy_resale_for_call(
        self,
        event_address: str,
        order: Mapping[str, Any],
        signature: str,
        recipient: str,
        value: int,
    ) -> TxParams:
        ticket_event = self._ticket_event(event_address)
        args = as_tuple(dict(order), SELL_ORDER_TYPES["SellOrder"])
        data = ticket_event.encode_abi(
            "buyResaleFor",
            args=[args, HexBytes(signature), Web3.to_checksum_address(recipient)],
        )
        return {
            "from": self._signer.address,
            "to": ticket_event.address,
            "data": data,
            "value": Wei(value),
        }

    def cancel_sell_orders_transaction(self, event_address: str, token_id: int) -> UnsignedTx:
        """The unsigned ``cancelSellOrders(tokenId)`` call: from the holder's wallet, it voids
        every sell order they signed for the ticket (its sale nonce moves on)."""
        ticket_event = self._ticket_event(event_address)
        data = ticket_event.encode_abi("cancelSellOrders", args=[token_id])
        return UnsignedTx(to=ticket_event.address, data=str(data), value=0, chainId=self.chain_id)

    def ticket_state(self, event_address: str, token_id: int) -> TicketState:
        """The ticket's tier, check-in flag, price paid and sale nonce at the latest block;
        raises ``ContractRevert`` ERC721NonexistentToken for a token never minted or burned."""
        tier, used, paid, nonce = self._call(self._ticket_event(event_address), "ticket", token_id)
        return TicketState(int(tier), bool(used), int(paid), int(nonce))

    def holder_and_state(self, event_address: str, token_id: int) -> tuple[Address, TicketState]:
        """``ownerOf`` and ``ticket`` of one token: who holds it and its state, as the chain has
        them at the latest block; raises ``ContractRevert`` ERC721NonexistentToken for a token
        never minted or burned. Every listing request asks both, so over HTTP they go as ONE
        JSON-RPC batch of two raw ``eth_call``s with calldata built by hand: through web3's
        contract functions each call cost about 4 ms of CPU (ABI lookup and encoding, request
        middleware asking the node its chain id twice per call, response formatting)."""
        if not isinstance(self._w3.provider, HTTPProvider):
            # In-process chains (eth-tester) take Python values, not JSON-RPC.
            owner = self.owner_of(event_address, token_id)
            return owner, self.ticket_state(event_address, token_id)
        batch = _holder_and_state_batch(event_address, token_id)
        provider = self._w3.provider
        with self._rpc():
            answers = provider.make_batch_request(batch)
            if isinstance(answers, list) and len(answers) == len(batch):
                for answer in answers:
                    if "error" in answer:
                        instruments.CHAIN_RPC_ERRORS.labels("eth_call", "error").inc()
            else:
                # A node that takes no batches (some hosted RPCs) answers one error object for
                # the whole request: the two calls one by one (the provider counts errors).
                answers = [provider.make_request(method, args) for method, args in batch]
            return self._holder_and_state_of(answers)

    @property
    def reads_on_loop(self) -> bool:
        """:meth:`holder_and_state_async` can read this node from an event loop."""
        return getattr(self._w3.provider, "async_poster", None) is not None

    def close_loop_connections(self) -> None:
        """Closes what :meth:`holder_and_state_async` keeps open on the running loop."""
        poster = getattr(self._w3.provider, "async_poster", None)
        if poster is not None:
            poster.close_idle()

    async def holder_and_state_async(
        self, event_address: str, token_id: int
    ) -> tuple[Address, TicketState]:
        """:meth:`holder_and_state` awaited on the event loop (the listing lane). Raises
        ``AsyncReadUnavailable`` where it can't be (no plain HTTP node, a node that takes no
        batches, an answer the small client does not read): the caller takes the blocking
        path, which can."""
        provider = self._w3.provider
        poster = getattr(provider, "async_poster", None)
        if poster is None or not isinstance(provider, CountingHTTPProvider):
            raise AsyncReadUnavailable("no asyncio transport for this node")
        to = _checksum(event_address)
        word = token_id.to_bytes(32, "big").hex()
        # The batch's JSON written straight, not through web3's request encoder: the same
        # two eth_calls as _holder_and_state_batch, ids 0 and 1.
        body = json.dumps(
            [
                {
                    "jsonrpc": "2.0",
                    "method": "eth_call",
                    "params": [{"to": to, "data": selector + word}, "latest"],
                    "id": i,
                }
                for i, selector in enumerate((_OWNER_OF, _TICKET))
            ]
        ).encode()
        try:
            raw = await poster.post(body)
        except (OSError, TimeoutError, EOFError) as exc:
            instruments.CHAIN_RPC_ERRORS.labels("batch", "transport").inc()
            raise AsyncReadUnavailable(str(exc)) from exc
        try:
            answers = sorted(json.loads(raw), key=lambda answer: answer["id"])
        except (ValueError, TypeError, KeyError) as exc:
            raise AsyncReadUnavailable("the node took no batch") from exc
        if [answer.get("id") for answer in answers] != [0, 1]:
            raise AsyncReadUnavailable("the node took no batch")
        for answer in answers:
            if "error" in answer:
                instruments.CHAIN_RPC_ERRORS.labels("eth_call", "error").inc()
        with self._rpc():
            # The owner as lowercase hex: every caller compares it lowercased (no checksum's
            # keccak on the listing lane's path).
            return self._holder_and_state_of(answers, checksummed=False)

    def _holder_and_state_of(
        self, answers: Any, *, checksummed: bool = True
    ) -> tuple[Address, TicketState]:
        results = []
        for answer in answers:
            if "error" in answer:
                # A revert becomes ContractLogicError (decoded by _rpc), as through web3.
                raise_contract_logic_error_on_revert(answer)
                raise Web3RPCError(str(answer["error"]))
            results.append(bytes.fromhex(str(answer["result"]).removeprefix("0x")))
        owner_word, state_words = results
        if len(owner_word) != 32 or len(state_words) != 128:
            raise ChainUnavailable(
                _endpoint(self._w3), f"ownerOf/ticket answered {owner_word!r}, {state_words!r}"
            )
        owner = Address(
            Web3.to_checksum_address(owner_word[12:])
            if checksummed
            else "0x" + owner_word[12:].hex()
        )
        tier, used, paid, nonce = (
            int.from_bytes(state_words[i : i + 32], "big") for i in range(0, 128, 32)
        )
        return owner, TicketState(tier, bool(used), paid, nonce)

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
        becomes its admin, minter, permit signer, scanner (the door's check-in batches) and
        relayer (resales settled for card buyers); the organizer gets ORGANIZER_ROLE and the
        royalties.

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
            signer,
            signer,
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

    # -- write-ahead transactions -----------------------------------------------------------
    # The fulfilment worker records each mint transaction before it sends it (backend.fulfilment),
    # so signing, sending and finding out what happened are separate steps here, where
    # ``_transact`` does them in one go.

    def use_nonce_floor(self, floor: Callable[[], AbstractContextManager[int]] | None) -> None:
        """Makes ``_transact`` choose nonces at or above the entered context's value: nonces of
        mint transactions written ahead (by this or another process) that the node may not have
        seen yet. The context stays entered until the transaction is sent, so a floor that also
        locks keeps another process from choosing the same nonce meanwhile."""
        self._nonce_floor = floor

    @contextmanager
    def next_nonce(self, floor: int = 0) -> Iterator[Nonce]:
        """Holds the send lock and yields the signer's next nonce, at least ``floor``, for a
        transaction the caller signs and records inside the block. The local counter moves past
        it only if the block ends normally; if it raises, the nonce was never used."""
        with self._send_lock:
            with self._rpc():
                pending = self._w3.eth.get_transaction_count(self._signer.address, "pending")
            nonce = max(pending, self._next_nonce or 0, floor)
            yield Nonce(nonce)
            self._next_nonce = nonce + 1

    def suggested_fees(self) -> Fees:
        """What a transaction sent now should offer per gas (see ``_fee_fields``)."""
        with self._rpc():
            fields = self._fee_fields()
        return _fees_of(fields)

    def estimate_mint_batch(self, event_address: str, orders: Sequence[CardMint]) -> int:
        """The gas limit for minting ``orders`` in one transaction: the node's estimate plus a
        margin. Sends nothing; raises the decoded revert (e.g. ``OrderAlreadyMinted``) if the
        batch would fail now."""
        with self._rpc():
            estimate = self._w3.eth.estimate_gas(self._mint_call(event_address, orders))
        return estimate * (100 + GAS_MARGIN_PERCENT) // 100

    def sign_mint_batch(
        self,
        event_address: str,
        orders: Sequence[CardMint],
        *,
        nonce: int,
        gas: int,
        fees: Fees,
    ) -> SignedTx:
        """``mintBatch(orders)`` signed with ``nonce``, ready to store and to send (again). The
        same arguments with higher ``fees`` make its replacement."""
        return self._sign_stored(
            self._mint_call(event_address, orders), nonce=nonce, gas=gas, fees=fees
        )

    def sign_ether_transfer(self, to: str, value: int, *, nonce: int, fees: Fees) -> SignedTx:
        """A plain ether payment from the signer (the backend's treasury) to ``to``, signed with
        ``nonce``, to store before it is sent (write-ahead; see backend.sales.holder_refunds).
        Its gas is the node's estimate plus a margin, so a contract wallet (a Safe) that runs
        code on receipt is paid too."""
        recipient = Web3.to_checksum_address(to)
        call: TxParams = {"from": self._signer.address, "to": recipient, "value": Wei(value)}
        with self._rpc():
            gas = self._w3.eth.estimate_gas(call) * (100 + GAS_MARGIN_PERCENT) // 100
        payment: TxParams = {"to": recipient, "value": Wei(value)}
        return self._sign_stored(payment, nonce=nonce, gas=gas, fees=fees)

    def _sign_stored(self, call: TxParams, *, nonce: int, gas: int, fees: Fees) -> SignedTx:
        """``call`` signed by the signer with ``nonce``, ``gas`` and ``fees``: the transaction
        a write-ahead record stores before it is sent (mints, settlements, holder refunds)."""
        tx: TxParams = {
            **call,
            "chainId": self.chain_id,
            "gas": gas,
            "nonce": Nonce(nonce),
            **_fee_params(fees),
        }
        signed = self._signer.sign_transaction(cast(dict[str, Any], tx))
        return SignedTx(
            tx_hash=_hex(signed.hash),
            raw=HexBytes(signed.raw_transaction).to_0x_hex(),
            nonce=nonce,
            gas=gas,
            fees=fees,
        )

    def broadcast(self, raw: str) -> str | None:
        """Sends a signed transaction: None if the node took it, else the node's reason for
        refusing it (already known, nonce too low, underpriced ...). Refusals are expected when a
        stored transaction is sent again; what happened is then learnt from receipts and nonces,
        never from these messages. Raises ``ChainUnavailable`` if the node does not answer."""
        try:
            with self._rpc():
                self._w3.eth.send_raw_transaction(HexBytes(raw))
        except TransactionFailed as exc:
            return exc.reason
        except (ChainUnavailable, ContractRevert):
            raise
        except Exception as exc:  # in-process chains raise their own validation errors
            return f"{type(exc).__name__}: {exc}"
        return None

    def transaction_receipt(self, tx_hash: str) -> MinedTx | None:
        """The receipt of ``tx_hash``, or None while it is pending or unknown to the node."""
        if isinstance(self._w3.provider, JSONBaseProvider):
            return self._raw_receipt(tx_hash)
        with self._rpc():
            try:
                receipt = self._w3.eth.get_transaction_receipt(HexStr(tx_hash))
            except TransactionNotFound:
                return None
        if receipt.get("blockNumber") is None:
            return None
        return MinedTx(
            tx_hash=_hex(receipt["transactionHash"]),
            succeeded=receipt["status"] == 1,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )

    def _raw_receipt(self, tx_hash: str) -> MinedTx | None:
        """The receipt as the node sent it, past web3's formatters: a mint batch's receipt
        carries a Transfer log per ticket, and formatting every one of them was most of the
        worker's CPU per receipt (bench-onsale). Only four fields are read here."""
        with self._rpc():
            receipt = self._raw_request("eth_getTransactionReceipt", [tx_hash])
        if receipt is None:
            return None
        try:
            if receipt["blockNumber"] is None:
                return None
            return MinedTx(
                tx_hash=_hex(receipt["transactionHash"]),
                succeeded=int(receipt["status"], 16) == 1,
                block_number=int(receipt["blockNumber"], 16),
                gas_used=int(receipt["gasUsed"], 16),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ChainUnavailable(
                _endpoint(self._w3), f"eth_getTransactionReceipt answered {receipt!r}"
            ) from exc

    def knows_transaction(self, tx_hash: str) -> bool:
        """Whether the node has ``tx_hash``, pending or mined."""
        with self._rpc():
            try:
                self._w3.eth.get_transaction(HexStr(tx_hash))
            except TransactionNotFound:
                return False
        return True

    def mined_nonce_count(self, *, confirmed: bool = False, account: str | None = None) -> int:
        """How many of the signer's (or ``account``'s) transactions are mined: its next nonce
        as of the latest block, or with ``confirmed`` as of the block ``confirmations`` below
        it."""
        address = Web3.to_checksum_address(account or self._signer.address)
        with self._rpc():
            if confirmed and self._confirmations > 0:
                block = max(int(self._w3.eth.block_number) - self._confirmations, 0)
                return int(self._w3.eth.get_transaction_count(address, block))
            return int(self._w3.eth.get_transaction_count(address, "latest"))

    def pending_nonce_count(self) -> int:
        """The signer's next nonce counting the transactions the node holds unmined."""
        with self._rpc():
            return int(self._w3.eth.get_transaction_count(self._signer.address, "pending"))

    def explain_mint_failure(
        self, event_address: str, orders: Sequence[CardMint], mined: MinedTx, gas: int
    ) -> ChainError:
        """Why a mined ``mintBatch`` failed: the decoded revert of its replay on the parent
        block (e.g. ``OrderAlreadyMinted``), or ``TransactionFailed`` if there is none."""
        tx: TxParams = {**self._mint_call(event_address, orders), "gas": gas}
        with self._rpc():
            return self._replay_failure(tx, mined.tx_hash, mined.block_number, mined.gas_used)

    def _mint_call(self, event_address: str, orders: Sequence[CardMint]) -> TxParams:
        ticket_event = self._ticket_event(event_address)
        return {
            "from": self._signer.address,
            "to": ticket_event.address,
            "data": ticket_event.encode_abi("mintBatch", args=[encode_mint_batch(orders)]),
            "value": Wei(0),
        }

    def _reserved_nonces(self) -> AbstractContextManager[int]:
        return nullcontext(0) if self._nonce_floor is None else self._nonce_floor()

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
        logs = self.ticket_logs(event_address, from_block, to_block, frozenset({PURCHASE}))
        return [entry for entry in logs if isinstance(entry, PurchaseLog)]

    def ticket_logs(
        self,
        event_address: str | Sequence[str],
        from_block: int,
        to_block: int,
        kinds: frozenset[str] = LOG_KINDS,
    ) -> list[ChainLog]:
        """The TicketEvent logs the indexer follows, of the given ``kinds``, in blocks
        ``from_block`` to ``to_block`` (inclusive), in chain order: purchases, refund claims,
        transfers between two wallets, resales, sell-order cancellations, check-ins and changes
        of the transfer policy (mints and burns are left out; the purchase, mint or refund that
        caused them is what counts)."""
        addresses = [event_address] if isinstance(event_address, str) else list(event_address)
        if not addresses or to_block < from_block or not kinds:
            return []
        events = self._event_events
        decoders = {
            kind: decoder
            for kind, decoder in (
                (PURCHASE, events.Purchased()),
                (REFUND, events.RefundClaimed()),
                (TRANSFER, events.Transfer()),
                (RESALE, events.Resold()),
                (ORDERS_CANCELLED, events.SellOrdersCancelled()),
                (CHECK_IN, events.CheckedIn()),
                (TRANSFER_POLICY, events.TransferPolicyChanged()),
            )
            if kind in kinds
        }
        by_topic = {d.topic.lower(): (kind, d) for kind, d in decoders.items()}
        with self._rpc():
            raw = self._raw_logs(
                {
                    "address": [Web3.to_checksum_address(a) for a in addresses],
                    # Hex quantities, as JSON-RPC wants them: get_logs converted ints for us.
                    "fromBlock": hex(from_block),
                    "toBlock": hex(to_block),
                    # One list in the first position: any of these events.
                    "topics": [list(by_topic)],
                }
            )
        records: list[ChainLog] = []
        for log in raw:
            topics = log["topics"]
            kind, decoder = by_topic[topics[0].lower()]
            # Mints and burns are most Transfer logs of a sale (one per ticket): drop them while
            # still raw, as formatting every log into HexBytes fields was most of this call's CPU.
            if kind == TRANSFER and _ZERO_TOPIC in (topics[1], topics[2]):
                continue
            # The formatting get_logs would have done, for the logs kept only.
            records.append(_chain_log(kind, decoder.process_log(log_entry_formatter(log))))
        records.sort(key=lambda r: (r.block_number, r.log_index))
        return records

    # -- cancellation -----------------------------------------------------------------------

    def event_cancelled(self, event_address: str) -> bool:
        """Whether the TicketEvent is cancelled on chain (at the node's latest block)."""
        info = self._call(self._ticket_event(event_address), "eventInfo")
        return bool(info[9])

    def cancel_event(self, event_address: str, *, from_block: int = 0) -> TxHash | None:
        """Cancels the event on chain and returns the transaction that did, waiting for the
        client's confirmations. Idempotent: an event already cancelled (by us or by its
        organizer) returns the earlier ``EventCancelled`` transaction, found from
        ``from_block`` on (None if the node no longer serves that log).

        ``cancelEvent`` is the organizer's; the signer is each event's admin but not its
        organizer (granting that at creation would cost every event about 24,000 gas), so it
        first grants itself ORGANIZER_ROLE when it lacks it. A grant that landed before a
        crash is seen by ``hasRole`` on the retry, never sent twice.
        """
        ticket_event = self._ticket_event(event_address)
        if self.event_cancelled(event_address):
            return self.find_cancellation(event_address, from_block=from_block)
        self.set_role(event_address, ORGANIZER_ROLE, self._signer.address, grant=True)
        try:
            receipt = self._transact(
                {"to": ticket_event.address, "data": ticket_event.encode_abi("cancelEvent")}
            )
        except SalesClosed as exc:
            # Someone (the organizer's own wallet, or our earlier attempt) got there first.
            if exc.name != "EventIsCancelled":
                raise
            return self.find_cancellation(event_address, from_block=from_block)
        return _hex(receipt["transactionHash"])

    # -- the door ---------------------------------------------------------------------------

    def check_in(self, event_address: str, entries: Sequence[CheckIn]) -> CheckInResult:
        """Marks the door's admitted tickets used on chain, in one transaction, waiting for the
        client's confirmations. The one place that knows ``checkIn``'s form.

        ``checkIn(tokenIds, holders)`` marks each ticket only if it is still held by the wallet
        the door admitted; one held by anyone else now (resold or moved between the scan and the
        block, or burned) is skipped with ``CheckInSkipped`` and the rest go on, and a ticket
        already used is left as it is without a log, so a retried batch never fails on its own
        earlier success. The outcome of each ticket is read from the receipt's logs. Only a
        cancelled event refuses the batch as a whole: then nothing will ever be marked.

        The signer holds SCANNER_ROLE on the events it creates; an event created before it did
        is granted it here first (once; a grant already made is seen by ``hasRole``)."""
        if not entries:
            return CheckInResult(None, (), (), (), 0, None)
        ticket_event = self._ticket_event(event_address)
        if event_address not in self._scanner_on:
            self.set_role(event_address, SCANNER_ROLE, self._signer.address, grant=True)
            self._scanner_on.add(event_address)
        token_ids = [entry.token_id for entry in entries]
        holders = [Web3.to_checksum_address(entry.holder) for entry in entries]
        data = ticket_event.encode_abi("checkIn", args=[token_ids, holders])
        try:
            receipt = self._transact({"to": ticket_event.address, "data": data})
        except SalesClosed as exc:
            if exc.name != "EventIsCancelled" or exc.tx_hash is not None:
                raise
            return CheckInResult(None, (), (), tuple(token_ids), 0, None)
        checked = {
            int(log["args"]["tokenId"]) for log in self._logs(receipt, ticket_event, "CheckedIn")
        }
        skipped = {
            int(log["args"]["tokenId"])
            for log in self._logs(receipt, ticket_event, "CheckInSkipped")
        }
        return CheckInResult(
            tx_hash=_hex(receipt["transactionHash"]),
            checked_in=tuple(t for t in token_ids if t in checked),
            already_used=tuple(t for t in token_ids if t not in checked and t not in skipped),
            skipped=tuple(t for t in token_ids if t in skipped),
            gas_used=int(receipt["gasUsed"]),
            block_number=int(receipt["blockNumber"]),
        )

    def ticket_used(self, event_address: str, token_id: int) -> bool:
        """Whether the ticket is marked used on chain (its ``CheckedIn`` log)."""
        ticket_event = self._ticket_event(event_address)
        with self._rpc():
            logs = ticket_event.events.CheckedIn().get_logs(
                from_block=0, argument_filters={"tokenId": token_id}
            )
        return len(list(logs)) > 0

    # -- roles (cancellation, key rotation) -------------------------------------------------

    def has_role(self, contract_address: str, role: bytes, account: str) -> bool:
        """AccessControl's ``hasRole`` on the factory or an event contract."""
        contract = self._access_control(contract_address)
        return bool(self._call(contract, "hasRole", role, Web3.to_checksum_address(account)))

    def set_role(self, contract_address: str, role: bytes, account: str, *, grant: bool) -> bool:
        """Grants (or revokes) ``role`` to ``account`` from the signer, which must be the
        contract's admin; returns False, sending nothing, if it is already so. Waits for the
        client's confirmations."""
        if self.has_role(contract_address, role, account) == grant:
            return False
        contract = self._access_control(contract_address)
        data = contract.encode_abi(
            "grantRole" if grant else "revokeRole", args=[role, Web3.to_checksum_address(account)]
        )
        self._transact({"to": contract.address, "data": data})
        return True

    def _access_control(self, address: str) -> Contract:
        if self._factory_address is not None and address.lower() == self._factory_address.lower():
            return self._factory()
        return self._ticket_event(address)

    def find_cancellation(self, event_address: str, *, from_block: int = 0) -> TxHash | None:
        """The transaction of the event's ``EventCancelled`` log, or None if there is none."""
        ticket_event = self._ticket_event(event_address)
        with self._rpc():
            logs = list(ticket_event.events.EventCancelled().get_logs(from_block=from_block))
        return _hex(logs[-1]["transactionHash"]) if logs else None

    def claim_refund_transaction(self, event_address: str, token_id: int) -> UnsignedTx:
        """The unsigned ``claimRefund(tokenId)`` call for the ticket's holder to send once the
        event is cancelled; the wallet adds gas, fees and its nonce."""
        ticket_event = self._ticket_event(event_address)
        data = ticket_event.encode_abi("claimRefund", args=[token_id])
        return UnsignedTx(to=ticket_event.address, data=str(data), value=0, chainId=self.chain_id)

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

    def _raw_logs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """``eth_getLogs`` as the node answered it: hex strings, no per-log formatting yet. An
        error answer raises ``Web3RPCError``, as ``get_logs`` does."""
        method, args = RPCEndpoint("eth_getLogs"), [params]
        if isinstance(self._w3.provider, JSONBaseProvider):
            # Straight to the node, past web3's middleware: for eth_getLogs it would only resolve
            # ENS names (we pass addresses) and copy every log into an AttributeDict.
            logs = self._raw_request(method, args)
            if not isinstance(logs, list):
                # get_logs' own formatters refused such an answer; unchecked, the indexer's loop
                # would die on a TypeError instead of retrying on the next pass.
                raise ChainUnavailable(
                    _endpoint(self._w3), f"eth_getLogs answered {logs!r}, not a list of logs"
                )
            return cast(list[dict[str, Any]], logs)
        # In-process chains (eth-tester) take Python values, not JSON-RPC: their own middleware
        # translates request and logs, and only web3's request pipeline runs it.
        return cast(list[dict[str, Any]], self._w3.manager.request_blocking(method, args))

    def _raw_request(self, method: str, args: list[Any]) -> Any:
        """One JSON-RPC call to a node over its provider, answered unformatted (hex strings);
        an error answer raises ``Web3RPCError``."""
        provider = cast(JSONBaseProvider, self._w3.provider)
        response = provider.make_request(RPCEndpoint(method), args)
        return self._w3.manager.formatted_response(response, args)

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
        contract = self._ticket_events.get(address)
        if contract is None:
            contract = self._w3.eth.contract(
                address=Web3.to_checksum_address(address), abi=self._event_artifact.abi
            )
            self._ticket_events[address] = contract
        return contract

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
        # The floor is entered before the send lock, as the fulfilment worker does (its database
        # transaction, then ``next_nonce``): one order, so the two can never wait on each other.
        with self._rpc(), self._reserved_nonces() as floor, self._send_lock:
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
            # The floor covers mint batches a worker wrote ahead but may not have sent yet.
            pending = self._w3.eth.get_transaction_count(self._signer.address, "pending")
            nonce = max(pending, self._next_nonce or 0, floor)
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
        return self._replay_failure(tx, tx_hash, int(receipt["blockNumber"]), receipt["gasUsed"])

    def _replay_failure(
        self, tx: TxParams, tx_hash: TxHash, block_number: int, gas_used: int
    ) -> ChainError:
        replay: TxParams = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value")}  # type: ignore[assignment]
        replay["gas"] = tx["gas"]
        try:
            self._w3.eth.call(replay, block_identifier=block_number - 1)
        except ContractLogicError as exc:
            return self._revert_from(exc, tx_hash=tx_hash)
        except Exception:  # the replay only diagnoses; the failure stands either way
            pass
        return TransactionFailed(
            tx_hash, f"status 0 after using {gas_used} of {tx['gas']} gas (out of gas?)"
        )


def _chain_log(kind: str, event: EventData) -> ChainLog:
    args = event["args"]
    base: dict[str, Any] = {
        "address": Address(Web3.to_checksum_address(event["address"])),
        "block_number": int(event["blockNumber"]),
        "block_hash": _hex(event["blockHash"]),
        "tx_hash": _hex(event["transactionHash"]),
        "log_index": int(event["logIndex"]),
    }
    if kind == PURCHASE:
        return PurchaseLog(
            **base,
            nonce=int(args["nonce"]),
            buyer=Address(Web3.to_checksum_address(args["buyer"])),
            tier=int(args["tierId"]),
            quantity=int(args["quantity"]),
            paid=int(args["paid"]),
        )
    if kind == REFUND:
        return RefundLog(
            **base,
            token_id=int(args["tokenId"]),
            owner=Address(Web3.to_checksum_address(args["owner"])),
            amount=int(args["amount"]),
        )
    if kind == RESALE:
        return ResaleLog(
            **base,
            token_id=int(args["tokenId"]),
            seller=Address(Web3.to_checksum_address(args["seller"])),
            buyer=Address(Web3.to_checksum_address(args["buyer"])),
            price=int(args["price"]),
            royalty=int(args["royalty"]),
            payee=Address(Web3.to_checksum_address(args["payee"])),
        )
    if kind == ORDERS_CANCELLED:
        return SellOrdersCancelledLog(
            **base, token_id=int(args["tokenId"]), new_nonce=int(args["newNonce"])
        )
    if kind == CHECK_IN:
        return CheckInLog(
            **base,
            token_id=int(args["tokenId"]),
            owner=Address(Web3.to_checksum_address(args["owner"])),
        )
    if kind == TRANSFER_POLICY:
        return TransferPolicyLog(**base, locked=bool(args["locked"]))
    return TransferLog(
        **base,
        token_id=int(args["tokenId"]),
        sender=Address(Web3.to_checksum_address(args["from"])),
        recipient=Address(Web3.to_checksum_address(args["to"])),
    )


def _fees_of(fields: TxParams) -> Fees:
    def wei(name: str) -> Wei | None:
        value = fields.get(name)
        return None if value is None else Wei(int(cast(int, value)))

    return Fees(
        max_fee_per_gas=wei("maxFeePerGas"),
        max_priority_fee_per_gas=wei("maxPriorityFeePerGas"),
        gas_price=wei("gasPrice"),
    )


def _fee_params(fees: Fees) -> TxParams:
    if fees.gas_price is not None:
        return {"gasPrice": fees.gas_price}
    assert fees.max_fee_per_gas is not None and fees.max_priority_fee_per_gas is not None
    return {
        "maxFeePerGas": fees.max_fee_per_gas,
        "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
    }


def _hex(value: bytes | str) -> TxHash:
    return TxHash(HexBytes(value).to_0x_hex().lower())


def _constructor_data(artifact: Artifact, args: Sequence[Any]) -> HexStr:
    constructor = next((e for e in artifact.abi if e["type"] == "constructor"), None)
    types = [i["type"] for i in constructor["inputs"]] if constructor else []
    return HexStr(artifact.bytecode + abi_encode(types, list(args)).hex())


__all__ = ["ChainClient", "connect_rpc"]
