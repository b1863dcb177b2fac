"""A harness for the ticket protocol on eth-tester: actors, deployment, EIP-712 signing, reverts.

Actors are keys added to eth-tester, so tests send plain transactions from them; the chain's clock
is moved with ``Protocol.travel_to``. Reverts are asserted by their exact encoded custom error
(selector + ABI-encoded arguments), computed here from the artifact's ABI.

Typed data, the EIP-712 domain and the packed card-mint batch come from ``backend.chain.protocol``,
so these tests pin the backend's encodings to the contracts as well.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt

from backend.chain.artifacts import load_artifact
from backend.chain.protocol import (
    PERMIT_TYPES,
    SELL_ORDER_TYPES,
    CardMint,
    domain,
    encode_mint_batch,
    sell_order_message,
)
from backend.chain.testing import _endpoints_with_revert_data

ETHER = 10**18
GWEI = 10**9
START = 2_000_000_000  # the chain's clock when a Protocol is made (2033-05-18)
# Every transaction carries this gas limit: eth-tester's gas estimation re-runs a call a dozen
# times, which was most of a test's run time.
GAS_LIMIT = 15_000_000

DEFAULT_ADMIN_ROLE = b"\x00" * 32
ORGANIZER_ROLE = Web3.keccak(text="ORGANIZER_ROLE")
MINTER_ROLE = Web3.keccak(text="MINTER_ROLE")
SIGNER_ROLE = Web3.keccak(text="SIGNER_ROLE")
SCANNER_ROLE = Web3.keccak(text="SCANNER_ROLE")
RELAYER_ROLE = Web3.keccak(text="RELAYER_ROLE")
EVENT_CREATOR_ROLE = Web3.keccak(text="EVENT_CREATOR_ROLE")
ZERO_ADDRESS = "0x" + "00" * 20


def digest_of(text: str) -> bytes:
    """A stand-in metadata digest (any non-zero 32 bytes is a valid CIDv0 digest)."""
    return hashlib.sha256(text.encode()).digest()


@dataclass
class TierSpec:
    price: int = 1 * ETHER // 10
    supply: int = 100
    per_wallet_limit: int = 0
    metadata: bytes = field(default_factory=lambda: digest_of("tier"))

    def as_tuple(self) -> tuple[int, int, int, bytes]:
        return (self.price, self.supply, self.per_wallet_limit, self.metadata)


@dataclass
class EventSpec:
    event_id: int = 1
    name: str = "Spring Concert"
    symbol: str = "SPRING"
    sale_start: int = START - 3600
    sale_end: int = START + 30 * 86400
    event_end: int = START + 31 * 86400
    resale_cap_bps: int = 11_000
    royalty_bps: int = 500
    transfers_locked: bool = False
    tiers: list[TierSpec] = field(default_factory=lambda: [TierSpec()])


def encoded_error(contract: Contract, name: str, *args: Any) -> str:
    """The revert data of custom error ``name(args)`` as declared in ``contract``'s ABI."""
    for entry in contract.abi:
        if entry.get("type") == "error" and entry["name"] == name:
            types = [i["type"] for i in entry["inputs"]]
            selector = Web3.keccak(text=f"{name}({','.join(types)})")[:4]
            return "0x" + (selector + abi_encode(types, list(args))).hex()
    raise KeyError(f"{name} is not an error of this contract")


class Protocol:
    """One in-process chain with the factory deployed and named, funded actors."""

    def __init__(self) -> None:
        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(
            EthereumTesterProvider(self.tester, api_endpoints=_endpoints_with_revert_data())
        )
        self._funder = self.w3.eth.accounts[0]
        self._encoders: dict[tuple[str, str], tuple[bytes, list[str]]] = {}
        # Wei each sender paid for gas, from the receipts of every transaction sent through `send`.
        self.fees: defaultdict[str, int] = defaultdict(int)
        self.travel_to(START)
        self.admin = self.actor()
        self.organizer = self.actor()
        self.minter = self.actor()
        self.signer = self.actor()
        self.scanner = self.actor()
        self.relayer = self.actor()
        factory_artifact = load_artifact("TicketFactory")
        receipt = self.send(
            self.w3.eth.contract(
                abi=factory_artifact.abi, bytecode=factory_artifact.bytecode
            ).constructor(self.admin.address),
            self.admin,
        )
        self.factory = self.w3.eth.contract(
            address=receipt["contractAddress"], abi=factory_artifact.abi
        )
        self.event_abi = load_artifact("TicketEvent").abi
        # For encoding TicketEvent errors that surface through the factory (initialize's checks).
        self.event_interface = self.w3.eth.contract(abi=self.event_abi)

    # -- actors and clock ---------------------------------------------------------------------

    def actor(self, ether: int = 1_000) -> LocalAccount:
        """A fresh key with ``ether`` ETH that eth-tester can send from."""
        account: LocalAccount = Account.create()
        self.tester.add_account(account.key.hex())
        if ether:
            self.w3.eth.send_transaction(
                {"from": self._funder, "to": account.address, "value": ether * ETHER, "gas": 21_000}
            )
        return account

    def now(self) -> int:
        """The timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel_to(self, timestamp: int) -> None:
        """The next block is mined at ``timestamp`` (eth-tester's clock only moves forward)."""
        self.tester.time_travel(timestamp)

    def balance(self, address: str) -> int:
        return int(self.tester.get_balance(Web3.to_checksum_address(address)))

    # -- transactions ---------------------------------------------------------------------------

    def send(self, fn: Any, sender: LocalAccount, value: int = 0) -> TxReceipt:
        """Mines ``fn`` from ``sender``; a revert raises ``ContractCustomError`` as a node would.

        The transaction is sent with a fixed gas limit (no estimation). When it reverts, the same
        call is replayed against the next block to surface the revert data; the failed
        transaction's gas is still recorded in ``fees``.
        """
        params: dict[str, Any] = {"from": sender.address, "value": value, "gas": GAS_LIMIT}
        tx_hash = fn.transact(params)
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        self.fees[sender.address] += receipt["gasUsed"] * receipt["effectiveGasPrice"]
        if receipt["status"] != 1:
            # estimate_gas, not call: contract constructors have no call.
            fn.estimate_gas({"from": sender.address, "value": value})
            raise AssertionError("the transaction reverted but a replayed call did not")
        return receipt

    @contextmanager
    def reverts(self, contract: Contract, error: str, *args: Any) -> Iterator[None]:
        """Expects the block to revert with exactly ``error(args)``."""
        expected = encoded_error(contract, error, *args)
        with pytest.raises(ContractCustomError) as raised:
            yield
        assert raised.value.data == expected, f"expected {error}{args}"

    # -- deployment -----------------------------------------------------------------------------

    def event_config(self, spec: EventSpec) -> tuple[Any, ...]:
        return (
            spec.event_id,
            spec.name,
            spec.symbol,
            self.admin.address,
            self.organizer.address,
            self.minter.address,
            self.signer.address,
            self.scanner.address,
            self.relayer.address,
            spec.sale_start,
            spec.sale_end,
            spec.event_end,
            spec.resale_cap_bps,
            spec.royalty_bps,
            spec.transfers_locked,
        )

    def create_event_call(self, spec: EventSpec, config: tuple[Any, ...] | None = None) -> Any:
        return self.factory.functions.createEvent(
            config or self.event_config(spec), [t.as_tuple() for t in spec.tiers]
        )

    def create_event(self, spec: EventSpec | None = None) -> Contract:
        spec = spec or EventSpec()
        receipt = self.send(self.create_event_call(spec), self.admin)
        (created,) = self.factory.events.EventCreated().process_receipt(receipt, errors=DISCARD)
        return self.event_at(created["args"]["ticketEvent"])

    def event_at(self, address: str) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=self.event_abi)

    # -- sales ----------------------------------------------------------------------------------

    def mint(
        self, event: Contract, order_id: int, recipients: Sequence[str], tier: int = 0
    ) -> TxReceipt:
        """Mints one card order through ``mintBatch``'s packed encoding."""
        return self.mint_batch(event, [CardMint(order_id, tier, tuple(recipients))])

    def mint_batch(self, event: Contract, orders: Sequence[CardMint]) -> TxReceipt:
        return self.send(event.functions.mintBatch(encode_mint_batch(orders)), self.minter)

    def permit(
        self,
        event: Contract,
        buyer: str,
        *,
        tier: int = 0,
        quantity: int = 1,
        unit_price: int = ETHER // 10,
        nonce: int = 1,
        deadline: int | None = None,
        signer: LocalAccount | None = None,
        chain_id: int | None = None,
        verifying_contract: str | None = None,
    ) -> tuple[tuple[Any, ...], bytes]:
        """A purchase permit and its signature (by the event's signer unless told otherwise)."""
        message = {
            "buyer": buyer,
            "tier": tier,
            "quantity": quantity,
            "unitPrice": unit_price,
            "nonce": nonce,
            "deadline": self.now() + 600 if deadline is None else deadline,
        }
        signature = self.sign(
            signer or self.signer,
            PERMIT_TYPES,
            message,
            verifying_contract or event.address,
            chain_id,
        )
        return tuple(message.values()), signature

    def sell_order(
        self,
        event: Contract,
        owner: LocalAccount,
        token_id: int,
        price: int,
        *,
        nonce: int | None = None,
        deadline: int | None = None,
        buyer: str = ZERO_ADDRESS,
        payee: str = ZERO_ADDRESS,
    ) -> tuple[tuple[Any, ...], bytes]:
        """A sell order for ``token_id`` at ``price`` signed by ``owner``."""
        order = self.sell_order_message(
            event, token_id, price, nonce=nonce, deadline=deadline, buyer=buyer, payee=payee
        )
        signature = self.sign(owner, SELL_ORDER_TYPES, order, event.address, None)
        return tuple(order.values()), signature

    def sell_order_message(
        self,
        event: Contract,
        token_id: int,
        price: int,
        *,
        nonce: int | None = None,
        deadline: int | None = None,
        buyer: str = ZERO_ADDRESS,
        payee: str = ZERO_ADDRESS,
    ) -> dict[str, Any]:
        """A sell order's typed-data message, at the ticket's sale nonce unless told."""
        if nonce is None:
            nonce = self.view(event.functions.ticket(token_id))[3]
        return sell_order_message(
            token_id,
            price,
            nonce,
            self.now() + 600 if deadline is None else deadline,
            buyer=buyer,
            payee=payee,
        )

    def sell_order_digest(self, event: Contract, message: dict[str, Any]) -> bytes:
        """The EIP-712 digest of a sell order (what an ERC-1271 wallet is asked about)."""
        signable = encode_typed_data(
            domain(self.w3.eth.chain_id, event.address), SELL_ORDER_TYPES, message
        )
        # EIP-191 version 0x01: keccak256(0x19 0x01 domainSeparator hashStruct(message)).
        return bytes(Web3.keccak(b"\x19" + signable.version + signable.header + signable.body))

    def sign(
        self,
        key: LocalAccount,
        types: dict[str, list[dict[str, str]]],
        message: dict[str, Any],
        verifying_contract: str,
        chain_id: int | None,
    ) -> bytes:
        signable = encode_typed_data(
            domain(self.w3.eth.chain_id if chain_id is None else chain_id, verifying_contract),
            types,
            message,
        )
        return bytes(key.sign_message(signable).signature)

    def buy(
        self,
        event: Contract,
        buyer: LocalAccount,
        *,
        quantity: int = 1,
        nonce: int = 1,
        tier: int = 0,
        unit_price: int = ETHER // 10,
    ) -> TxReceipt:
        permit, signature = self.permit(
            event, buyer.address, tier=tier, quantity=quantity, unit_price=unit_price, nonce=nonce
        )
        return self.send(
            event.functions.purchase(permit, signature), buyer, value=unit_price * quantity
        )

    def resell(
        self, event: Contract, seller: LocalAccount, buyer: LocalAccount, token_id: int, price: int
    ) -> TxReceipt:
        """The seller signs a sell order at ``price`` and the buyer settles it."""
        order, signature = self.sell_order(event, seller, token_id, price)
        return self.send(event.functions.buyResale(order, signature), buyer, value=price)

    def check_in(self, event: Contract, token_ids: Sequence[int]) -> TxReceipt:
        """The scanner checks in ``token_ids``, each expected to be held by its current owner."""
        holders = [self.view(event.functions.ownerOf(t)) for t in token_ids]
        return self.send(event.functions.checkIn(list(token_ids), holders), self.scanner)

    # -- reading --------------------------------------------------------------------------------

    def view(self, fn: ContractFunction) -> Any:
        """Calls a view from an explicit sender (web3 would list every account to guess one)."""
        return fn.call({"from": self._funder})

    def read_uints(
        self, reader: Contract, target: Contract, calls: Sequence[tuple[str, tuple[Any, ...]]]
    ) -> list[tuple[int, ...]]:
        """Views of ``target`` that return only uints, all in one eth_call through a Reader
        (tests/contracts/fixtures/Reader.sol) sent to eth-tester directly: for invariants checked
        after every step of a property test. One tuple of uints per call, in order."""
        encoded = [self._calldata(target, name, args) for name, args in calls]
        data = self._calldata(reader, "readAll", (target.address, encoded))
        raw = self.tester.call(
            {"from": self._funder, "to": reader.address, "data": "0x" + data.hex()}
        )
        output = bytes.fromhex(raw[2:]) if isinstance(raw, str) else bytes(raw)
        (results,) = abi_decode(["bytes[]"], output)
        return [
            tuple(int.from_bytes(r[i : i + 32], "big") for i in range(0, len(r), 32))
            for r in results
        ]

    def _calldata(self, contract: Contract, name: str, args: Sequence[Any]) -> bytes:
        # web3's encode_abi hashes every ABI entry's signature to find one function; invariants
        # encode hundreds of calls per run, so selectors and types are looked up once.
        key = (contract.address, name)
        if key not in self._encoders:
            entry = next(
                e for e in contract.abi if e.get("type") == "function" and e.get("name") == name
            )
            types = [i["type"] for i in entry["inputs"]]
            selector = Web3.keccak(text=f"{name}({','.join(types)})")[:4]
            self._encoders[key] = (selector, types)
        selector, types = self._encoders[key]
        return selector + abi_encode(types, list(args))

    def logs(self, contract: Contract, event: str, receipt: TxReceipt) -> list[dict[str, Any]]:
        """The args of ``contract``'s ``event`` logs in ``receipt``, in order."""
        found: tuple[EventData, ...] = contract.events[event]().process_receipt(
            receipt, errors=DISCARD
        )
        return [dict(log["args"]) for log in found]


def high_s(signature: bytes) -> bytes:
    """The same ECDSA signature with s replaced by n - s (and v flipped): valid for ecrecover,
    rejected by a malleability-safe verifier."""
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (n - s).to_bytes(32, "big") + bytes([55 - v if v in (27, 28) else v ^ 1])
