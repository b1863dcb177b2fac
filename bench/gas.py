"""Gas benchmark: fairtix's ticket contracts beside the contracts people would otherwise use.

One run starts one anvil devnet (npm ``@foundry-rs/anvil``), deploys everything on it side by side
and measures each operation as the ``gasUsed`` of its mined transaction receipt (intrinsic 21,000
and calldata included; "per ticket" figures are one transaction's gasUsed divided by its tickets):

* fairtix: ``TicketFactory``/``TicketEvent`` from ``contracts/build/`` (``make compile``);
* openzeppelin_erc721: a plain OpenZeppelin ERC721 with public mints (bench/contracts);
* erc721a: ERC721A from npm ``erc721a`` with public mints (bench/contracts);
* unlock_publiclock_v14: Unlock Protocol's PublicLock V14 from npm ``@unlock-protocol/contracts``,
  created the way Unlock creates locks (an ``UnlockV13`` contract's ``createLock``, which puts
  the lock behind a transparent proxy), plus, for reference, the implementation deployed and
  initialized directly.

Each measured call is preceded by a warm-up call of the same kind on the same contract, by or for
other fresh wallets, so no figure carries the one-off cost of a contract's very first call (a
counter going from zero to non-zero); the warm-up figures are kept in ``meta.first_call``.
"Fresh wallet" means an address that has never held a token of that contract.

Writes ``bench/results/gas.json`` and the "Gas" section of ``bench/RESULTS.md`` (other sections
are left as they are). Not part of ``make test``; run it with ``make bench-gas``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import solcx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams, TxReceipt

from backend.chain import compiler
from backend.chain.devnet import Devnet, devnet_account

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_CONTRACTS = REPO_ROOT / "bench" / "contracts"
DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "gas.json"
DEFAULT_MARKDOWN = REPO_ROOT / "bench" / "RESULTS.md"
DEFAULT_ARTIFACTS = REPO_ROOT / "contracts" / "build"
UNLOCK_PACKAGE = REPO_ROOT / "node_modules" / "@unlock-protocol" / "contracts"

FAIRTIX = "fairtix"
OZ = "openzeppelin_erc721"
ERC721A = "erc721a"
UNLOCK = "unlock_publiclock_v14"
IMPLEMENTATIONS = (FAIRTIX, OZ, ERC721A, UNLOCK)

# The issue's canonical operations, in table order, and fairtix's targets for some of them.
CANONICAL = (
    "event_deploy",
    "purchase_1",
    "card_mint_10_per_ticket",
    "resale_settle",
    "transfer",
    "check_in_per_ticket",
)
TARGETS = {
    "event_deploy": 400_000,
    "purchase_1": 100_000,
    "card_mint_10_per_ticket": 50_000,
    "resale_settle": 100_000,
    "resale_settle_card": 90_000,
}

# What every key measures, in table order: each canonical key is followed by the peers' nearest
# operations that are not the same thing and so get keys of their own.
KEY_DOCS = {
    "event_deploy": "a new event's collection through its factory, 1 tier "
    "(fairtix: TicketFactory.createEvent, an EIP-1167 clone; Unlock: Unlock.createLock, "
    "a transparent proxy)",
    "event_deploy_2_tiers": "fairtix createEvent with 2 tiers",
    "factory_deploy": "one-off: TicketFactory, which deploys the TicketEvent implementation "
    "that every event's clone delegates to",
    "deploy": "the whole contract deployed from bytecode, ready to use, no factory or clone "
    "(PublicLock: deploy + initialize, two transactions)",
    "purchase_1": "a fresh wallet buys 1 ticket and pays ETH in the same call "
    "(fairtix: purchase with the signer's EIP-712 permit; Unlock: purchase)",
    "purchase_1_direct": "PublicLock V14 deployed and initialized directly by an EOA (no "
    "Unlock contract, no proxy): purchase of 1",
    "mint_1": "public mint of 1 token to a fresh wallet: no payment, price, supply or role "
    "check (not a purchase)",
    "card_mint_10_per_ticket": "fairtix mintBatch by the minter role: one order, 10 distinct "
    "fresh wallets, gas / 10",
    "card_mint_10_per_ticket_access_list": "the same fairtix mintBatch with the node's EIP-2930 "
    "access list (not what the backend sends)",
    "purchase_10_distinct_per_ticket": "Unlock purchase: one call buying keys for 10 distinct "
    "fresh wallets, gas / 10",
    "mint_10_distinct_per_ticket": "one transaction minting 1 token to each of 10 distinct "
    "fresh wallets, no payment or checks, gas / 10",
    "mint_10_distinct_per_ticket_access_list": "the same 10-wallet mint with the node's "
    "EIP-2930 access list",
    "mint_10_per_ticket": "ERC721A mint(to, 10): 10 tokens to ONE fresh wallet, gas / 10",
    "resale_settle": "fairtix buyResale by a fresh wallet: seller-signed EIP-712 order, price "
    "cap, ERC-2981 royalty, seller and organizer credited",
    "resale_settle_card": "fairtix buyResaleFor by the relayer role for a card buyer's fresh "
    "wallet: a card-minted ticket whose seller is paid back by card (payee: the relayer as the "
    "backend's treasury, so it sends only the royalty), organizer credited",
    "resale_settle_card_eth_rail": "the same buyResaleFor of an order whose seller is paid in "
    "ether: the relayer sends the price, seller and organizer credited",
    "transfer": "transferFrom by the holder to a fresh wallet",
    "transfer_direct": "transferFrom on the directly deployed PublicLock",
    "check_in_per_ticket": "fairtix checkIn of 10 tickets of 10 different orders, each with the "
    "holder the door admitted, gas / 10",
    "check_in_per_ticket_one_order": "fairtix checkIn of the 10 tickets of one order, gas / 10",
    "check_in_per_ticket_one_stale": "fairtix checkIn of 10 tickets of 10 different orders of "
    "which one was resold since its scan (skipped with CheckInSkipped), gas / 10",
}

ETHER = 10**18
GWEI = 10**9
TICKET_PRICE = 50_000_000 * GWEI  # 0.05 ETH: a whole number of gwei, as permits require
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_UINT256 = 2**256 - 1
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")
PURCHASE_PERMIT_TYPE = "PurchasePermit"
SELL_ORDER_TYPE = "SellOrder"
EIP712_NAME = "fairtix TicketEvent"
EIP712_VERSION = "1"


class BenchError(RuntimeError):
    """Raised when a benchmark step cannot run: a missing artifact, a reverted transaction."""


# --------------------------------------------------------------------------------------------
# Chain plumbing
# --------------------------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def custom_error_name(abi: Sequence[Mapping[str, Any]], data: str) -> str | None:
    """Names the custom error in ``abi`` whose selector starts revert ``data``, if any."""
    if not data.startswith("0x") or len(data) < 10:
        return None
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = ",".join(_abi_type(i) for i in entry.get("inputs", []))
        selector = "0x" + Web3.keccak(text=f"{entry['name']}({types})")[:4].hex()
        if data[:10].lower() == selector:
            return f"{entry['name']}({types}) {data}"
    return None


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


@dataclass
class Chain:
    """Sends locally signed transactions to the devnet and hands back their receipts."""

    w3: Web3
    funder: LocalAccount
    _fresh_counter: int = 0

    def fresh(self, count: int, *, fund_wei: int = 0) -> list[LocalAccount]:
        """``count`` new wallets that have never appeared on chain, each sent ``fund_wei``."""
        wallets = []
        for _ in range(count):
            self._fresh_counter += 1
            key = Web3.keccak(text=f"fairtix gas bench wallet {self._fresh_counter}")
            wallet: LocalAccount = Account.from_key(key)
            if fund_wei:
                self.send(self.funder, None, to=wallet.address, value=fund_wei)
            wallets.append(wallet)
        return wallets

    def deploy(
        self, sender: LocalAccount, abi: list[dict[str, Any]], bytecode: str, *args: Any
    ) -> tuple[Contract, TxReceipt]:
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)
        receipt = self.send(sender, factory.constructor(*args))
        address = receipt["contractAddress"]
        if address is None:
            raise BenchError("deployment receipt has no contract address")
        return self.w3.eth.contract(address=address, abi=abi), receipt

    def send(
        self,
        sender: LocalAccount,
        call: Any,
        *,
        to: str | None = None,
        value: int = 0,
        access_list: bool = False,
    ) -> TxReceipt:
        """Signs and sends ``call`` (a contract function or constructor, or None for a plain
        value transfer to ``to``); returns the receipt of the mined, successful transaction.
        ``access_list`` attaches the node's EIP-2930 access list (eth_createAccessList), as the
        fairtix backend does for card mints."""
        params: dict[str, Any] = {
            "from": sender.address,
            "value": value,
            "nonce": self.w3.eth.get_transaction_count(sender.address, "pending"),
            "chainId": self.w3.eth.chain_id,
        }
        if call is None:
            params |= {
                "to": Web3.to_checksum_address(to or ZERO_ADDRESS),
                "gas": 21_000,
                "maxFeePerGas": 2 * self.w3.eth.gas_price + GWEI,
                "maxPriorityFeePerGas": GWEI,
            }
        else:
            try:
                # build_transaction estimates gas, so a call that would revert fails here, with
                # its revert data, rather than as a mined failure.
                params = dict(call.build_transaction(params))
            except (ContractCustomError, ContractLogicError) as exc:
                data = str(exc.data or exc.message)
                named = custom_error_name(_abi_of(call), data)
                raise BenchError(f"{_describe(call)} would revert: {named or exc}") from exc
            # The estimate is exact for this state; the margin only covers gas-dependent paths
            # (EIP-150's 63/64 rule on calls given a gas cap, as PublicLock's Unlock callback).
            if access_list:
                request = {k: params[k] for k in ("from", "to", "data", "value") if k in params}
                # Plain dicts here (params is edited key by key); web3 takes them as TxParams.
                listed = self.w3.eth.create_access_list(cast(TxParams, request))
                params["accessList"] = listed["accessList"]
                del params["gas"]  # re-estimated with the access list
                params["gas"] = self.w3.eth.estimate_gas(cast(TxParams, params))
            params["gas"] = int(params["gas"] * 1.25) + 10_000
        signed = sender.sign_transaction(params)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise BenchError(f"{_describe(call)} reverted on chain (tx {tx_hash.hex()})")
        return receipt

    def timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])


def _abi_of(call: Any) -> Sequence[Mapping[str, Any]]:
    # A ContractFunction carries its contract's ABI as contract_abi, a constructor as abi.
    for attribute in ("contract_abi", "abi"):
        abi = getattr(call, attribute, None)
        if isinstance(abi, list):
            return abi
    return []


def _describe(call: Any) -> str:
    if call is None:
        return "value transfer"
    return str(getattr(call, "fn_name", None) or type(call).__name__)


def minted_token_ids(receipt: TxReceipt, contract: str) -> list[int]:
    """Ids of the tokens minted (ERC-721 Transfer from address zero) by ``contract``, in order."""
    ids = []
    for entry in receipt["logs"]:
        topics = entry["topics"]
        if (
            entry["address"].lower() == contract.lower()
            and len(topics) == 4
            and bytes(topics[0]) == TRANSFER_TOPIC
            and int.from_bytes(bytes(topics[1]), "big") == 0
        ):
            ids.append(int.from_bytes(bytes(topics[3]), "big"))
    return ids


@dataclass
class Results:
    """Gas figures per implementation, plus the warm-up (first call) figures kept apart."""

    gas: dict[str, dict[str, int]] = field(default_factory=dict)
    first_call: dict[str, dict[str, int]] = field(default_factory=dict)

    def record(self, impl: str, key: str, gas: int, *, per: int = 1, first: bool = False) -> None:
        value = round(gas / per)
        (self.first_call if first else self.gas).setdefault(impl, {})[key] = value
        suffix = f" ({gas:,} / {per})" if per > 1 else ""
        what = "warm-up" if first else "measured"
        log(f"  [{impl}] {key}: {value:,} gas{suffix}, {what}")


# --------------------------------------------------------------------------------------------
# Compiling the peers
# --------------------------------------------------------------------------------------------

PEER_REMAPPINGS = ("erc721a/=node_modules/erc721a/",)


def compiler_settings_for_peers(artifacts: Path) -> dict[str, Any]:
    """The Standard JSON settings fairtix's artifacts were built with (recorded in each artifact),
    so the wrappers get the same optimizer, IR pipeline and EVM version; backend/chain/compiler.py's
    current settings if the artifacts can't be read."""
    try:
        recorded = json.loads((artifacts / "TicketFactory.json").read_text(encoding="utf-8"))
        settings = dict(recorded["settings"])
    except (OSError, ValueError, KeyError):
        settings = compiler.compiler_settings()
    settings["remappings"] = [*settings.get("remappings", ()), *PEER_REMAPPINGS]
    settings["outputSelection"] = {"*": {"*": ["abi", "evm.bytecode.object"]}}
    return settings


def compile_peers(settings: Mapping[str, Any], root: Path = REPO_ROOT) -> dict[str, dict[str, Any]]:
    """Compiles bench/contracts/*.sol with the project's solc (backend/chain/compiler.py's binary)
    and ``settings``."""
    binary = compiler.solc_binary(root)
    sources = sorted(BENCH_CONTRACTS.glob("*.sol"))
    input_json = {
        "language": "Solidity",
        "sources": {
            p.relative_to(root).as_posix(): {"content": p.read_text(encoding="utf-8")}
            for p in sources
        },
        "settings": dict(settings),
    }
    output = solcx.compile_standard(
        input_json, solc_binary=binary, base_path=root, allow_paths=root
    )
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise BenchError("\n".join(e.get("formattedMessage", e["message"]) for e in errors))
    compiled: dict[str, dict[str, Any]] = {}
    for unit in input_json["sources"]:
        for name, contract in output["contracts"][unit].items():
            compiled[name] = {
                "abi": contract["abi"],
                "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
            }
    return compiled


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------


def bench_openzeppelin(chain: Chain, peers: Mapping[str, Any], results: Results) -> None:
    log(f"{OZ}: OZPlainTicket (OpenZeppelin ERC721, public mint)")
    deployer = chain.funder
    art = peers["OZPlainTicket"]
    token, receipt = chain.deploy(deployer, art["abi"], art["bytecode"])
    results.record(OZ, "deploy", receipt["gasUsed"])

    warm, holder = chain.fresh(2, fund_wei=ETHER)
    receipt = chain.send(deployer, token.functions.mint(warm.address, 1))
    results.record(OZ, "mint_1", receipt["gasUsed"], first=True)
    receipt = chain.send(deployer, token.functions.mint(holder.address, 2))
    results.record(OZ, "mint_1", receipt["gasUsed"])

    for first, base in ((True, 100), (False, 200)):
        recipients = [w.address for w in chain.fresh(10)]
        receipt = chain.send(deployer, token.functions.mintBatch(recipients, base))
        results.record(OZ, "mint_10_distinct_per_ticket", receipt["gasUsed"], per=10, first=first)
    recipients = [w.address for w in chain.fresh(10)]
    call = token.functions.mintBatch(recipients, 300)
    receipt = chain.send(deployer, call, access_list=True)
    results.record(OZ, "mint_10_distinct_per_ticket_access_list", receipt["gasUsed"], per=10)

    for first, (owner, token_id) in ((True, (warm, 1)), (False, (holder, 2))):
        (to,) = chain.fresh(1)
        call = token.functions.transferFrom(owner.address, to.address, token_id)
        results.record(OZ, "transfer", chain.send(owner, call)["gasUsed"], first=first)


def bench_erc721a(chain: Chain, peers: Mapping[str, Any], results: Results) -> None:
    log(f"{ERC721A}: ERC721APeer (ERC721A 4.3.0, public mint)")
    deployer = chain.funder
    art = peers["ERC721APeer"]
    token, receipt = chain.deploy(deployer, art["abi"], art["bytecode"])
    results.record(ERC721A, "deploy", receipt["gasUsed"])

    holders: list[tuple[LocalAccount, int]] = []
    for first in (True, False):
        (wallet,) = chain.fresh(1, fund_wei=ETHER)
        receipt = chain.send(deployer, token.functions.mint(wallet.address, 1))
        results.record(ERC721A, "mint_1", receipt["gasUsed"], first=first)
        holders.append((wallet, minted_token_ids(receipt, token.address)[0]))

    for first in (True, False):
        (wallet,) = chain.fresh(1)
        receipt = chain.send(deployer, token.functions.mint(wallet.address, 10))
        results.record(ERC721A, "mint_10_per_ticket", receipt["gasUsed"], per=10, first=first)

    for first in (True, False):
        recipients = [w.address for w in chain.fresh(10)]
        receipt = chain.send(deployer, token.functions.mintEach(recipients))
        results.record(
            ERC721A, "mint_10_distinct_per_ticket", receipt["gasUsed"], per=10, first=first
        )
    recipients = [w.address for w in chain.fresh(10)]
    receipt = chain.send(deployer, token.functions.mintEach(recipients), access_list=True)
    results.record(ERC721A, "mint_10_distinct_per_ticket_access_list", receipt["gasUsed"], per=10)

    # The tokens from mint_1 have their ownership slot written, like OZ's; a token from the
    # middle of a batch would first have to find its owner by scanning back.
    for first, (owner, token_id) in zip((True, False), holders, strict=True):
        (to,) = chain.fresh(1)
        call = token.functions.transferFrom(owner.address, to.address, token_id)
        results.record(ERC721A, "transfer", chain.send(owner, call)["gasUsed"], first=first)


def load_unlock_artifact(kind: str, version: int) -> dict[str, Any]:
    path = UNLOCK_PACKAGE / "dist" / "abis" / kind / f"{kind}V{version}.json"
    if not path.is_file():
        raise BenchError(
            f"{path} is missing; run `npm ci` (devDependency @unlock-protocol/contracts)"
        )
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _lock_purchase(lock: Contract, recipients: Sequence[str]) -> ContractFunction:
    count = len(recipients)
    return lock.functions.purchase(
        [TICKET_PRICE] * count,  # ignored for ETH locks; msg.value pays
        list(recipients),
        [ZERO_ADDRESS] * count,  # no referrer
        [ZERO_ADDRESS] * count,  # no key manager: the owner manages the key
        [b""] * count,
    )


def bench_unlock(chain: Chain, peers: Mapping[str, Any], results: Results) -> dict[str, str]:
    """PublicLock V14 as Unlock creates it, and (for reference) deployed directly.

    Returns how it was deployed, for the report."""
    log(f"{UNLOCK}: Unlock V13 (proxied) + PublicLock V14 template, locks from createLock")
    owner = chain.funder
    unlock_art = load_unlock_artifact("Unlock", 13)
    lock_art = load_unlock_artifact("PublicLock", 14)
    lock_abi = lock_art["abi"]

    # Unlock runs behind a transparent proxy on mainnet, and has to here: its initialize nests a
    # second initializer that its Initializable only allows during the proxy's construction.
    implementation, _ = chain.deploy(owner, unlock_art["abi"], unlock_art["bytecode"])
    init = implementation.encode_abi("initialize", [owner.address])  # also deploys a ProxyAdmin
    proxy_art = peers["UnlockProxy"]
    proxy, _ = chain.deploy(
        owner, proxy_art["abi"], proxy_art["bytecode"], implementation.address, owner.address, init
    )
    unlock = chain.w3.eth.contract(address=proxy.address, abi=unlock_art["abi"])
    if unlock.functions.owner().call() != owner.address:
        raise BenchError("Unlock behind its proxy did not initialize")
    template, _ = chain.deploy(owner, lock_abi, lock_art["bytecode"])
    # addLockTemplate initializes the template itself (Unlock as its creator), so nobody else can.
    chain.send(owner, unlock.functions.addLockTemplate(template.address, 14))
    chain.send(owner, unlock.functions.setLockTemplate(template.address))

    # expirationDuration = max: a key that never expires, like a ticket; ETH-priced; no fees set.
    locks = []
    for first, name in ((True, "Warm-up lock"), (False, "Bench lock")):
        create = unlock.functions.createLock(
            MAX_UINT256, ZERO_ADDRESS, TICKET_PRICE, 10_000, name, b"\x00" * 12
        )
        address = create.call({"from": owner.address})
        receipt = chain.send(owner, create)
        results.record(UNLOCK, "event_deploy", receipt["gasUsed"], first=first)
        locks.append(chain.w3.eth.contract(address=address, abi=lock_abi))
    lock = locks[1]
    if lock.functions.publicLockVersion().call() != 14:
        raise BenchError("the created lock does not report publicLockVersion 14")
    if lock.functions.unlockProtocol().call() != unlock.address:
        raise BenchError("the created lock is not linked to the Unlock contract")

    holders = _bench_lock_purchases(chain, lock, results, suffix="")
    _bench_lock_transfers(chain, lock, holders, results, suffix="")

    log(f"{UNLOCK}: PublicLock V14 deployed and initialized directly (reference)")
    direct, receipt = chain.deploy(owner, lock_abi, lock_art["bytecode"])
    init = direct.functions.initialize(
        owner.address, MAX_UINT256, ZERO_ADDRESS, TICKET_PRICE, 10_000, "Direct lock"
    )
    init_receipt = chain.send(owner, init)
    results.record(UNLOCK, "deploy", receipt["gasUsed"] + init_receipt["gasUsed"])
    holders = _bench_lock_purchases(chain, direct, results, suffix="_direct", batch=False)
    _bench_lock_transfers(chain, direct, holders, results, suffix="_direct")

    return {
        "unlock": "UnlockV13 from @unlock-protocol/contracts behind a transparent proxy "
        "(bench/contracts/UnlockProxy.sol, OpenZeppelin's TransparentUpgradeableProxy) whose "
        "constructor calls initialize(owner), which deploys Unlock's ProxyAdmin for locks",
        "template": "PublicLockV14 deployed, registered with addLockTemplate(impl, 14) (which "
        "initializes the template with Unlock as its creator) and setLockTemplate(impl)",
        "lock": "Unlock.createLock(expirationDuration=2**256-1 (never expires), tokenAddress=0 "
        f"(ETH), keyPrice={TICKET_PRICE} wei, maxNumberOfKeys=10000, name, salt=0): a "
        "TransparentUpgradeableProxy to the template, whose initialize sets unlockProtocol = "
        "the Unlock contract; purchases call back Unlock.recordKeyPurchase (no UDT oracle, "
        "protocol fee 0)",
        "direct": "PublicLockV14 deployed and initialize(owner, 2**256-1, 0, keyPrice, 10000, "
        "name) called by the owner EOA: unlockProtocol is then that EOA, so purchases skip "
        "the Unlock callback (PublicLock checks code.length and emits UnlockCallFailed)",
    }


def _bench_lock_purchases(
    chain: Chain, lock: Contract, results: Results, *, suffix: str, batch: bool = True
) -> list[tuple[LocalAccount, int]]:
    holders = []
    for first in (True, False):
        (buyer,) = chain.fresh(1, fund_wei=ETHER)
        call = _lock_purchase(lock, [buyer.address])
        receipt = chain.send(buyer, call, value=TICKET_PRICE)
        results.record(UNLOCK, f"purchase_1{suffix}", receipt["gasUsed"], first=first)
        holders.append((buyer, minted_token_ids(receipt, lock.address)[0]))
    if batch:
        (payer,) = chain.fresh(1, fund_wei=ETHER)
        recipients = [w.address for w in chain.fresh(10)]
        receipt = chain.send(payer, _lock_purchase(lock, recipients), value=10 * TICKET_PRICE)
        results.record(
            UNLOCK, f"purchase_10_distinct_per_ticket{suffix}", receipt["gasUsed"], per=10
        )
        if len(minted_token_ids(receipt, lock.address)) != 10:
            raise BenchError("PublicLock batch purchase did not mint 10 keys")
    return holders


def _bench_lock_transfers(
    chain: Chain,
    lock: Contract,
    holders: Sequence[tuple[LocalAccount, int]],
    results: Results,
    *,
    suffix: str,
) -> None:
    for first, (holder, token_id) in zip((True, False), holders, strict=True):
        (to,) = chain.fresh(1)
        call = lock.functions.transferFrom(holder.address, to.address, token_id)
        results.record(
            UNLOCK, f"transfer{suffix}", chain.send(holder, call)["gasUsed"], first=first
        )


# --------------------------------------------------------------------------------------------
# fairtix
# --------------------------------------------------------------------------------------------


def _function_abi(abi: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any]:
    matches = [e for e in abi if e.get("type") == "function" and e.get("name") == name]
    if len(matches) != 1:
        raise BenchError(
            f"expected one function {name} in the ABI, found {len(matches)}; "
            "is contracts/build up to date (`make compile`)?"
        )
    return matches[0]


def _as_struct(
    components: Sequence[Mapping[str, Any]], values: Mapping[str, Any]
) -> tuple[Any, ...]:
    """``values`` (by field name) as the tuple web3 encodes, in the ABI's field order."""
    names = [c["name"] for c in components]
    missing = [n for n in names if n not in values]
    if missing:
        raise BenchError(f"no value for struct field(s) {missing}; the struct has {names}")
    return tuple(values[n] for n in names)


def _eip712_fields(components: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [{"name": c["name"], "type": c["type"]} for c in components]


@dataclass
class FairtixEvent:
    """One event collection and what signing for it needs."""

    contract: Contract
    signer: LocalAccount
    chain_id: int
    domain_name: str = EIP712_NAME
    domain_version: str = EIP712_VERSION

    def sign(self, key: bytes, primary: str, function: str, values: Mapping[str, Any]) -> bytes:
        """EIP-712 signature by ``key`` over struct ``primary``, the first parameter of
        ``function``; the struct's field list comes from the ABI, so it is the contract's."""
        components = _function_abi(self.contract.abi, function)["inputs"][0]["components"]
        message = {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: _eip712_fields(components),
            },
            "primaryType": primary,
            "domain": {
                "name": self.domain_name,
                "version": self.domain_version,
                "chainId": self.chain_id,
                "verifyingContract": self.contract.address,
            },
            "message": dict(values),
        }
        signed = Account.sign_typed_data(key, full_message=message)
        return bytes(signed.signature)

    def struct(self, function: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
        components = _function_abi(self.contract.abi, function)["inputs"][0]["components"]
        return _as_struct(components, values)


def load_fairtix(build_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The TicketFactory and TicketEvent artifacts; refuses ones without the protocol's API."""
    artifacts = []
    for name in ("TicketFactory", "TicketEvent"):
        path = build_dir / f"{name}.json"
        try:
            artifacts.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read {path} ({exc}); run `make compile`") from exc
    factory, event = artifacts
    newest_source = max((p.stat().st_mtime for p in compiler.source_files(REPO_ROOT)), default=0)
    if (
        build_dir == DEFAULT_ARTIFACTS
        and newest_source > (build_dir / "TicketEvent.json").stat().st_mtime
    ):
        log(
            "warning: contracts/*.sol changed after contracts/build was written; these figures "
            "are for the built artifacts (run `make compile` first to measure the sources)"
        )
    needed = {
        "TicketFactory": (factory, ("createEvent",)),
        "TicketEvent": (
            event,
            ("mintBatch", "purchase", "buyResale", "buyResaleFor", "checkIn"),
        ),
    }
    for name, (art, functions) in needed.items():
        have = {e.get("name") for e in art["abi"] if e.get("type") == "function"}
        absent = [f for f in functions if f not in have]
        if absent:
            raise BenchError(
                f"{build_dir / (name + '.json')} has no {', '.join(absent)}: these artifacts "
                "predate the sale/resale/check-in protocol; run `make compile`"
            )
    return factory, event


def bench_fairtix(chain: Chain, build_dir: Path, results: Results) -> dict[str, str]:
    """Measures fairtix's operations; returns which artifacts were measured, for the report."""
    factory_art, event_art = load_fairtix(build_dir)
    version = factory_art.get("compiler", {}).get("version", "?")
    log(f"{FAIRTIX}: TicketFactory + TicketEvent from {build_dir} (solc {version})")
    admin, organizer, minter, signer, scanner, relayer = (devnet_account(i) for i in range(6))

    constructor = next((e for e in factory_art["abi"] if e.get("type") == "constructor"), None)
    args = [admin.address] if constructor and constructor.get("inputs") else []
    factory, receipt = chain.deploy(admin, factory_art["abi"], factory_art["bytecode"], *args)
    results.record(FAIRTIX, "factory_deploy", receipt["gasUsed"])

    create_abi = _function_abi(factory_art["abi"], "createEvent")
    config_fields = create_abi["inputs"][0]["components"]
    tier_fields = create_abi["inputs"][1]["components"]
    now = chain.timestamp()
    cap_bps, royalty_bps = 11_000, 500

    def config(event_id: int) -> tuple[Any, ...]:
        return _as_struct(
            config_fields,
            {
                "eventId": event_id,
                "name": f"Bench Event {event_id}",
                "symbol": "FTX",
                "admin": admin.address,
                "organizer": organizer.address,
                "minter": minter.address,
                "signer": signer.address,
                "scanner": scanner.address,
                "relayer": relayer.address,
                "saleStart": now - 60,
                "saleEnd": now + 30 * 86_400,
                "eventEnd": now + 60 * 86_400,
                "resaleCapBps": cap_bps,
                "royaltyBps": royalty_bps,
                "transfersLocked": False,
            },
        )

    def tiers(count: int) -> list[tuple[Any, ...]]:
        return [
            _as_struct(
                tier_fields,
                {
                    "price": TICKET_PRICE * (i + 1),
                    "supply": 10_000,
                    "perWalletLimit": 4,
                    "metadataDigest": Web3.keccak(text=f"bench tier {i} metadata"),
                },
            )
            for i in range(count)
        ]

    events: list[ChecksumAddress] = []
    for event_id, tier_count, key, first in (
        (1, 1, "event_deploy", True),
        (2, 1, "event_deploy", False),
        (3, 2, "event_deploy_2_tiers", False),
    ):
        create = factory.functions.createEvent(config(event_id), tiers(tier_count))
        address = create.call({"from": admin.address})
        receipt = chain.send(admin, create)
        results.record(FAIRTIX, key, receipt["gasUsed"], first=first)
        events.append(Web3.to_checksum_address(address))

    contract = chain.w3.eth.contract(address=events[1], abi=event_art["abi"])
    event = FairtixEvent(contract, signer, chain.w3.eth.chain_id)
    _read_domain(event)

    # Crypto purchase: the signer role's permit, submitted and paid by the buyer's own wallet.
    deadline = now + 3_600
    sellers: list[tuple[LocalAccount, int]] = []
    for nonce, first in ((1, True), (2, False)):
        (buyer,) = chain.fresh(1, fund_wei=ETHER)
        permit = {
            "buyer": buyer.address,
            "tier": 0,
            "quantity": 1,
            "unitPrice": TICKET_PRICE,
            "nonce": nonce,
            "deadline": deadline,
        }
        signature = event.sign(signer.key, PURCHASE_PERMIT_TYPE, "purchase", permit)
        call = contract.functions.purchase(event.struct("purchase", permit), signature)
        receipt = chain.send(buyer, call, value=TICKET_PRICE)
        results.record(FAIRTIX, "purchase_1", receipt["gasUsed"], first=first)
        (token_id,) = minted_token_ids(receipt, contract.address)
        _expect_owner(contract, token_id, buyer.address)
        sellers.append((buyer, token_id))

    # Card sale: the minter role mints an order to 10 distinct wallets that have never held one.
    def mint_batch(orders: Sequence[tuple[int, Sequence[str]]]) -> ContractFunction:
        return contract.functions.mintBatch(_mint_batch_argument(contract, orders))

    card_holders: list[LocalAccount] = []
    card_wallets: list[list[LocalAccount]] = []
    card_tokens: list[list[int]] = []
    # Card order ids and permit nonces share one id space (token id = id * 256 + index).
    # As the backend sends it (ChainClient.mint_batch), then with an EIP-2930 access list, which
    # saves only the cold-access difference (measured, not adopted).
    for order_id, first in ((1003, True), (1004, False)):
        wallets = chain.fresh(10)
        call = mint_batch([(order_id, [w.address for w in wallets])])
        receipt = chain.send(minter, call, access_list=True)
        key = "card_mint_10_per_ticket_access_list"
        results.record(FAIRTIX, key, receipt["gasUsed"], per=10, first=first)
        ids = minted_token_ids(receipt, contract.address)
        for token_id, wallet in zip(ids, wallets, strict=True):
            _expect_owner(contract, token_id, wallet.address)
    for order_id, first in ((1001, True), (1002, False)):
        wallets = chain.fresh(10)
        call = mint_batch([(order_id, [w.address for w in wallets])])
        receipt = chain.send(minter, call)
        results.record(FAIRTIX, "card_mint_10_per_ticket", receipt["gasUsed"], per=10, first=first)
        ids = minted_token_ids(receipt, contract.address)
        if len(ids) != 10:
            raise BenchError(f"mintBatch of 10 recipients minted {len(ids)} tickets")
        for token_id, wallet in zip(ids, wallets, strict=True):
            _expect_owner(contract, token_id, wallet.address)
        card_holders.append(wallets[0])
        card_wallets.append(wallets)
        card_tokens.append(ids)

    # Resale: the seller (who bought with a permit) signs off chain; a fresh wallet settles.
    price = TICKET_PRICE * cap_bps // 10_000  # the cap itself, the most the contract allows
    for first, (seller, token_id) in zip((True, False), sellers, strict=True):
        (buyer,) = chain.fresh(1, fund_wei=ETHER)
        sell = {
            "tokenId": token_id,
            "price": price,
            "nonce": _sale_nonce(contract, token_id),
            "deadline": deadline,
            "buyer": ZERO_ADDRESS,
            "payee": ZERO_ADDRESS,
        }
        signature = event.sign(seller.key, SELL_ORDER_TYPE, "buyResale", sell)
        call = contract.functions.buyResale(event.struct("buyResale", sell), signature)
        credit_before = _credit(contract, seller.address)
        receipt = chain.send(buyer, call, value=price)
        results.record(FAIRTIX, "resale_settle", receipt["gasUsed"], first=first)
        _expect_owner(contract, token_id, buyer.address)
        _, royalty = contract.functions.royaltyInfo(token_id, price).call()
        credited = _credit(contract, seller.address) - credit_before
        if royalty == 0 or credited != price - royalty:
            raise BenchError(
                f"resale of {price} wei credited the seller {credited} with royalty {royalty}"
            )

    # Resale for a card buyer: the relayer settles the seller's order for the buyer's fresh wallet.
    # Sellers are card buyers of order 1002 (never moved their tickets); first the card rail
    # (proceeds netted: the relayer is the treasury and sends the royalty), then the ether rail.
    _, royalty = contract.functions.royaltyInfo(0, price).call()
    for index, (key, first, payee) in enumerate(
        (
            ("resale_settle_card", True, relayer.address),
            ("resale_settle_card", False, relayer.address),
            ("resale_settle_card_eth_rail", True, ZERO_ADDRESS),
            ("resale_settle_card_eth_rail", False, ZERO_ADDRESS),
        ),
        start=1,
    ):
        token_id = card_tokens[1][index]
        seller = card_wallets[1][index]
        (recipient,) = chain.fresh(1)
        sell = {
            "tokenId": token_id,
            "price": price,
            "nonce": _sale_nonce(contract, token_id),
            "deadline": deadline,
            "buyer": recipient.address,
            "payee": payee,
        }
        signature = event.sign(seller.key, SELL_ORDER_TYPE, "buyResaleFor", sell)
        call = contract.functions.buyResaleFor(
            event.struct("buyResaleFor", sell), signature, recipient.address
        )
        netted = payee == relayer.address
        credit_before = _credit(contract, seller.address)
        receipt = chain.send(relayer, call, value=royalty if netted else price)
        results.record(FAIRTIX, key, receipt["gasUsed"], first=first)
        _expect_owner(contract, token_id, recipient.address)
        credited = _credit(contract, seller.address) - credit_before
        if credited != (0 if netted else price - royalty):
            raise BenchError(f"{key} credited the seller {credited} of a {price} wei resale")

    # Transfer: a card buyer's ticket, never moved before, to a fresh wallet.
    for first, holder, ids in zip((True, False), card_holders, card_tokens, strict=True):
        chain.send(chain.funder, None, to=holder.address, value=ETHER)
        (to,) = chain.fresh(1)
        call = contract.functions.transferFrom(holder.address, to.address, ids[0])
        results.record(FAIRTIX, "transfer", chain.send(holder, call)["gasUsed"], first=first)
        _expect_owner(contract, ids[0], to.address)

    # Check-in: a scanner's batch usually holds tickets of different orders, so the headline
    # figure uses 10 single-ticket orders; one order's 10 tickets are measured too. Each ticket
    # goes with the holder the door admitted (here: its owner).
    def check_in(ids: Sequence[int]) -> ContractFunction:
        holders = [contract.functions.ownerOf(t).call() for t in ids]
        return contract.functions.checkIn(list(ids), holders)

    singles = chain.fresh(20)
    receipt = chain.send(
        minter, mint_batch([(2001 + i, [w.address]) for i, w in enumerate(singles)])
    )
    single_ids = minted_token_ids(receipt, contract.address)
    for first, ids in ((True, single_ids[:10]), (False, single_ids[10:])):
        receipt = chain.send(scanner, check_in(ids))
        results.record(FAIRTIX, "check_in_per_ticket", receipt["gasUsed"], per=10, first=first)
        _expect_used(contract, ids)
    receipt = chain.send(scanner, check_in(card_tokens[0]))
    results.record(FAIRTIX, "check_in_per_ticket_one_order", receipt["gasUsed"], per=10)
    _expect_used(contract, card_tokens[0])
    # One ticket of the batch changed hands after its scan: the door expected its old holder.
    more = chain.fresh(10)
    receipt = chain.send(minter, mint_batch([(3001 + i, [w.address]) for i, w in enumerate(more)]))
    stale_ids = minted_token_ids(receipt, contract.address)
    holders = [contract.functions.ownerOf(t).call() for t in stale_ids]
    holders[0] = scanner.address
    receipt = chain.send(scanner, contract.functions.checkIn(stale_ids, holders))
    results.record(FAIRTIX, "check_in_per_ticket_one_stale", receipt["gasUsed"], per=10)
    _expect_used(contract, stale_ids[1:])
    return {
        "directory": str(
            build_dir.relative_to(REPO_ROOT) if build_dir.is_relative_to(REPO_ROOT) else build_dir
        ),
        "sourceHash": str(event_art.get("sourceHash", "?")),
        "compiler": str(event_art.get("compiler", {}).get("version", "?")),
    }


def _expect_owner(contract: Contract, token_id: int, owner: str) -> None:
    # A figure is only worth reporting if the operation did what its name says.
    actual = contract.functions.ownerOf(token_id).call()
    if actual != owner:
        raise BenchError(f"token {token_id} is owned by {actual}, expected {owner}")


def _outputs(contract: Contract, function: str) -> list[str]:
    """Names of ``function``'s return values, or [] if the contract has no such function."""
    entries: list[dict[str, Any]] = [dict(e) for e in contract.abi]
    found = next((e for e in entries if e.get("type") == "function" and e["name"] == function), {})
    return [str(o["name"]) for o in found.get("outputs", [])]


def _mint_batch_argument(contract: Contract, orders: Sequence[tuple[int, Sequence[str]]]) -> Any:
    """``mintBatch``'s argument for ``orders`` (order id, recipients), all of tier 0: packed
    bytes if the function takes ``bytes`` (order id 8 bytes big-endian | tier 1 byte | count 1 byte
    | 20-byte recipients, order after order), else an array of MintOrder structs."""
    (param,) = _function_abi(contract.abi, "mintBatch")["inputs"]
    if param["type"] == "bytes":
        packed = bytearray()
        for order_id, recipients in orders:
            packed += order_id.to_bytes(8, "big") + bytes([0, len(recipients)])
            for recipient in recipients:
                packed += bytes.fromhex(recipient.removeprefix("0x"))
        return bytes(packed)
    return [
        _as_struct(
            param["components"],
            {"orderId": order_id, "tier": 0, "recipients": list(recipients)},
        )
        for order_id, recipients in orders
    ]


def _credit(contract: Contract, account: str) -> int:
    return int(contract.functions.creditOf(account).call())


def _expect_used(contract: Contract, token_ids: Sequence[int]) -> None:
    outputs = _outputs(contract, "ticket")
    if "used" not in outputs:
        return  # nothing to read the check-in state from
    for token_id in token_ids:
        if not contract.functions.ticket(token_id).call()[outputs.index("used")]:
            raise BenchError(f"ticket {token_id} is not marked used after checkIn")


def _sale_nonce(contract: Contract, token_id: int) -> int:
    """The nonce a sell order for ``token_id`` must carry: ``saleNonce(tokenId)`` if the contract
    has it, else the ``saleNonce`` output of ``ticket(tokenId)``."""
    if _outputs(contract, "saleNonce"):
        return int(contract.functions.saleNonce(token_id).call())
    outputs = _outputs(contract, "ticket")
    if "saleNonce" not in outputs:
        raise BenchError("TicketEvent has neither saleNonce(tokenId) nor ticket(tokenId).saleNonce")
    return int(contract.functions.ticket(token_id).call()[outputs.index("saleNonce")])


def _read_domain(event: FairtixEvent) -> None:
    """Takes the EIP-712 domain from ERC-5267's eip712Domain() when the contract has it."""
    has = any(e.get("name") == "eip712Domain" for e in event.contract.abi)
    if not has:
        return
    domain = event.contract.functions.eip712Domain().call()
    event.domain_name, event.domain_version = domain[1], domain[2]
    if domain[3] != event.chain_id or domain[4] != event.contract.address:
        raise BenchError(f"eip712Domain() answered an unexpected domain: {domain}")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

COLUMN_TITLES = {
    FAIRTIX: "fairtix",
    OZ: "OZ ERC721",
    ERC721A: "ERC721A",
    UNLOCK: "PublicLock V14",
}


def row_keys(results: Results) -> list[str]:
    """The keys any implementation has, in KEY_DOCS order (unknown keys last)."""
    present = {k for figures in results.gas.values() for k in figures}
    return [k for k in KEY_DOCS if k in present] + sorted(present - set(KEY_DOCS))


def verdict(results: Results, key: str) -> tuple[str, str]:
    target = TARGETS.get(key)
    if target is None:
        return "", ""
    value = results.gas.get(FAIRTIX, {}).get(key)
    if value is None:
        return f"<= {target:,}", "not run"
    return f"<= {target:,}", "PASS" if value <= target else "FAIL"


def table_rows(results: Results, impls: Sequence[str]) -> list[list[str]]:
    rows = []
    for key in row_keys(results):
        cells = [key]
        for impl in impls:
            value = results.gas.get(impl, {}).get(key)
            cells.append(f"{value:,}" if value is not None else "-")
        cells.extend(verdict(results, key))
        rows.append(cells)
    return rows


def render_text_table(results: Results, impls: Sequence[str]) -> str:
    header = ["operation", *(COLUMN_TITLES[i] for i in impls), "target", "fairtix"]
    rows = [header, *table_rows(results, impls)]
    widths = [max(len(r[c]) for r in rows) for c in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown_table(results: Results, impls: Sequence[str]) -> str:
    header = ["operation", *(COLUMN_TITLES[i] for i in impls), "fairtix target", "result"]
    lines = [
        "| " + " | ".join(header) + " |",
        "|---" + "|---:" * (len(header) - 2) + "|---|",
    ]
    for row in table_rows(results, impls):
        name = f"**`{row[0]}`**" if row[0] in CANONICAL else f"`{row[0]}`"
        lines.append("| " + " | ".join([name, *row[1:]]) + " |")
    return "\n".join(lines)


def _package_version(name: str) -> str:
    try:
        data = json.loads((REPO_ROOT / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return "not installed"
    return str(data.get("version", "?"))


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def _memory() -> str:
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return "unknown"
    return f"{pages / 2**30:.0f} GiB"


def collect_meta(w3: Web3, results: Results, run_info: RunInfo) -> dict[str, Any]:
    binary = compiler.solc_binary(REPO_ROOT)
    try:
        solc_version = solcx.wrapper.get_version_str_from_solc_binary(binary)
    except (OSError, solcx.exceptions.SolcError, ValueError):
        solc_version = compiler.SOLC_VERSION
    settings = run_info.settings
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "solc": str(solc_version),
        "solc_settings": {
            "optimizer_runs": settings.get("optimizer", {}).get("runs"),
            "viaIR": bool(settings.get("viaIR", False)),
            "evmVersion": settings.get("evmVersion"),
            "applies_to": "fairtix (as recorded in contracts/build) and the OZ/ERC721A/proxy "
            "wrappers, compiled with the same settings; Unlock's contracts are the npm "
            "package's prebuilt bytecode",
        },
        "fairtix_artifacts": run_info.fairtix_artifacts,
        "anvil": str(w3.client_version),
        "packages": {
            name: _package_version(name)
            for name in (
                "@openzeppelin/contracts",
                "erc721a",
                "@unlock-protocol/contracts",
                "@foundry-rs/anvil",
                "solc",
            )
        },
        "machine": {
            "platform": platform.platform(),
            "cpu": _cpu_model(),
            "cores": os.cpu_count(),
            "memory": _memory(),
            "python": platform.python_version(),
        },
        "method": (
            "gasUsed of each mined transaction receipt on one anvil (intrinsic 21,000 and "
            "calldata included); *_per_ticket = one transaction's gasUsed / 10; each figure "
            "follows a warm-up call of the same kind on the same contract (see first_call); "
            "fresh wallet = an address that never held a token of that contract"
        ),
        "targets": TARGETS,
        "keys": {k: KEY_DOCS[k] for k in row_keys(results) if k in KEY_DOCS},
        "first_call": results.first_call,
        "unlock_deployment": dict(run_info.unlock_setup),
    }


def write_json(path: Path, results: Results, meta: Mapping[str, Any]) -> None:
    order = {key: index for index, key in enumerate(KEY_DOCS)}
    document: dict[str, Any] = {
        impl: dict(sorted(results.gas.get(impl, {}).items(), key=lambda kv: order.get(kv[0], 99)))
        for impl in IMPLEMENTATIONS
    }
    document["meta"] = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


MARKDOWN_NOTES = """\
How to read it:

- Every figure is the `gasUsed` of a mined transaction receipt on one anvil, so it includes the
  21,000 base cost and calldata; `*_per_ticket` is one transaction's `gasUsed` divided by 10.
- Each figure follows a warm-up call of the same kind on the same contract (other fresh wallets),
  so none pays the one-off cost of a contract's very first call, e.g. a counter going from zero to
  non-zero. Those first calls are in `gas.json` under `meta.first_call`.
- A "fresh wallet" has never held a token of that contract: minting or transferring to it pays for
  a new balance slot, as it does for a ticket buyer.
- Only true equivalents share a row; the bold rows are the issue's operations. `purchase_1` is a
  paid purchase by the buyer's own wallet: fairtix's `purchase` (with the signer's EIP-712
  permit) and PublicLock's `purchase`. The OpenZeppelin and ERC721A wrappers have no purchase,
  price, supply, order id or role check, so their public mints are `mint_1` and
  `mint_10_distinct_per_ticket`, not `purchase_1` or `card_mint_10_per_ticket`: they are the floor
  any ERC721 pays to create a token, the nearest peers of those rows. PublicLock's one call
  buying keys for 10 distinct wallets (the issue's "per key in a batch") is
  `purchase_10_distinct_per_ticket`.
- ERC721A's `mint_10_per_ticket` puts all 10 tokens in ONE wallet, which is where ERC721A saves
  gas; a card order's tickets go to distinct wallets, which `mint_10_distinct_per_ticket` shows.
- `event_deploy` is a new per-event collection through a factory: fairtix's `createEvent` (an
  EIP-1167 clone, its configuration and tiers) and Unlock's `createLock` (a transparent proxy to
  the PublicLock template, initialized). `deploy` is a whole contract deployed from bytecode, as
  the OZ and ERC721A wrappers would be deployed per event.
- PublicLock V14 is created as Unlock creates locks: UnlockV13 from the same npm package behind a
  transparent proxy (its `initialize` only works from a proxy's constructor), the PublicLockV14
  template registered with `addLockTemplate(impl, 14)` and `setLockTemplate(impl)`, then
  `createLock(2**256-1, address(0), 0.05 ETH, 10000, name, 0)`: keys that never expire, priced in
  ETH. Its purchases therefore call back `Unlock.recordKeyPurchase`, as on mainnet (no UDT oracle
  and a zero protocol fee here, so no token distribution or fee transfer). Purchases pass no
  referrer and no key manager, PublicLock's cheapest path. The `*_direct` rows are PublicLockV14
  deployed and `initialize`d by an EOA instead: no Unlock behind it (PublicLock skips the callback
  when `unlockProtocol` has no code) and no proxy.
- fairtix's `check_in_per_ticket` checks in 10 tickets of 10 different orders (a scanner's batch
  is whoever walked in); `check_in_per_ticket_one_order` is 10 tickets of one order. Each ticket
  is sent with the holder the door admitted, and is checked in only if it still holds it.
- fairtix's `resale_settle_card` is the backend settling a sell order for a card buyer: the
  relayer role's `buyResaleFor`, the ticket to the buyer's fresh wallet. Its seller chose to be
  paid back by card, so the order's payee is the backend's treasury (the relayer), whose proceeds
  are netted: it sends only the organizer's royalty. `resale_settle_card_eth_rail` is the same
  settlement for a seller paid in ether: the relayer sends the whole price and the seller is
  credited, as in `resale_settle`.
"""


# The issue's "about" figures for the peers, to show how this run compares with them.
ISSUE_REFERENCES = (
    (UNLOCK, "purchase_1", 256_600, "PublicLock V14 purchase"),
    (UNLOCK, "purchase_10_distinct_per_ticket", 207_700, "PublicLock per key in a batch"),
    (UNLOCK, "transfer", 104_800, "PublicLock plain transfer"),
    (OZ, "mint_1", 68_800, "OpenZeppelin single mint"),
)


def issue_reference_lines(results: Results) -> list[str]:
    parts = []
    for impl, key, reference, what in ISSUE_REFERENCES:
        value = results.gas.get(impl, {}).get(key)
        if value is not None:
            parts.append(f"{what} about {reference:,} (here `{key}` {value:,})")
    if not parts:
        return []
    return [
        "The issue's reference figures beside this run: " + "; ".join(parts) + ". PublicLock's "
        "cost depends on how a lock is set up: `*_direct` shows it without Unlock and the proxy, "
        "and passing key managers adds a storage write per key.",
        "",
    ]


def render_markdown_section(results: Results, meta: Mapping[str, Any]) -> str:
    packages = meta["packages"]
    machine = meta["machine"]
    solc = meta["solc_settings"]
    when = meta["date"].replace("T", " ").removesuffix("Z") + " UTC"
    lines = [
        "## Gas",
        "",
        f"Run of `make bench-gas` (bench/gas.py) on {when}; raw figures in "
        "[results/gas.json](results/gas.json).",
        "",
        f"- solc {meta['solc']}, optimizer {solc['optimizer_runs']:,} runs, "
        f"viaIR {str(solc['viaIR']).lower()}, evmVersion {solc['evmVersion']}: fairtix's "
        "artifacts, and the OZ/ERC721A/proxy wrappers compiled with the same settings; "
        "Unlock's contracts are the npm package's prebuilt bytecode",
        f"- {meta['anvil']} (npm @foundry-rs/anvil {packages['@foundry-rs/anvil']})",
        f"- @openzeppelin/contracts {packages['@openzeppelin/contracts']}, erc721a "
        f"{packages['erc721a']}, @unlock-protocol/contracts "
        f"{packages['@unlock-protocol/contracts']} (PublicLockV14, UnlockV13)",
        f"- machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, "
        f"{machine['platform']}, Python {machine['python']}",
        "",
        render_markdown_table(results, IMPLEMENTATIONS),
        "",
        "What each row measures:",
        "",
        *(f"- `{k}`: {doc}" for k, doc in meta["keys"].items()),
        "",
        MARKDOWN_NOTES.rstrip(),
        "",
        *issue_reference_lines(results),
        "Reproduce: `make bench-gas` (installs what it needs, starts its own anvil on a free "
        f"port; this run took {meta['seconds']:.0f} s); `python bench/gas.py --help` for options.",
        "",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    """Replaces the "## Gas" section of ``path`` (up to the next "## " heading or another
    benchmark's "<!-- ... -->" section marker), or appends it; every other section is left
    untouched."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if not text:
        text = (
            "# Benchmark results\n\nDated results of `make bench-*`; each section is rewritten "
            "by its benchmark. Raw figures are in results/.\n"
        )
    pattern = re.compile(r"^## Gas\n.*?(?=^## |^<!-- |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/gas.py",
        description=(
            "Measure the gas of fairtix's ticket contracts (TicketFactory/TicketEvent from "
            "contracts/build) beside a plain OpenZeppelin ERC721, ERC721A and Unlock's "
            "PublicLock V14, all on one anvil devnet started for the run. Prints a table with "
            "fairtix's targets and PASS/FAIL, and writes bench/results/gas.json and the 'Gas' "
            "section of bench/RESULTS.md."
        ),
        epilog=(
            "Needs `make install` (Python venv and node_modules: solc, OpenZeppelin, erc721a, "
            "@unlock-protocol/contracts, anvil) and fairtix artifacts from `make compile`. "
            "Progress goes to stderr, the table to stdout. Exit status 1 if a step fails; "
            "a missed target is reported as FAIL but does not change the exit status."
        ),
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=IMPLEMENTATIONS,
        metavar="IMPL",
        help=f"run only these implementations ({', '.join(IMPLEMENTATIONS)}); a partial run "
        "prints its table but writes no results unless --write is given",
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help="write the results files even for a partial (--only) run",
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only; write no results files"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="port for the anvil this run starts (default: a free port, so a running "
        "`make run` devnet on 8545 is never touched)",
    )
    parser.add_argument(
        "--rpc-url",
        help="measure on an already running anvil devnet (chain id 31337, funded devnet "
        "mnemonic accounts) instead of starting one",
    )
    parser.add_argument(
        "--artifacts",
        type=Path,
        default=DEFAULT_ARTIFACTS,
        help="directory holding TicketFactory.json and TicketEvent.json (default: %(default)s)",
    )
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="results file (default: %(default)s)"
    )
    parser.add_argument(
        "--markdown",
        type=Path,
        default=DEFAULT_MARKDOWN,
        help="markdown file whose 'Gas' section is rewritten (default: %(default)s)",
    )
    return parser.parse_args(argv)


@dataclass
class RunInfo:
    """What a run used, for the report: compiler settings and how PublicLock was deployed."""

    settings: dict[str, Any]
    unlock_setup: dict[str, str] = field(default_factory=dict)
    fairtix_artifacts: dict[str, str] = field(default_factory=dict)


def run(w3: Web3, impls: Sequence[str], artifacts: Path) -> tuple[Results, RunInfo]:
    chain = Chain(w3, devnet_account(0))
    results = Results()
    info = RunInfo(compiler_settings_for_peers(artifacts))
    peers: dict[str, dict[str, Any]] = {}
    if {OZ, ERC721A, UNLOCK} & set(impls):
        log(
            "compiling bench/contracts (OZPlainTicket, ERC721APeer, UnlockProxy) with "
            f"fairtix's settings (optimizer runs {info.settings['optimizer']['runs']}, "
            f"viaIR {bool(info.settings.get('viaIR'))}) ..."
        )
        peers = compile_peers(info.settings)
    if OZ in impls:
        bench_openzeppelin(chain, peers, results)
    if ERC721A in impls:
        bench_erc721a(chain, peers, results)
    if UNLOCK in impls:
        info.unlock_setup = bench_unlock(chain, peers, results)
    if FAIRTIX in impls:
        info.fairtix_artifacts = bench_fairtix(chain, artifacts, results)
    return results, info


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    impls = tuple(i for i in IMPLEMENTATIONS if not args.only or i in args.only)
    write = not args.no_write and (args.write or len(impls) == len(IMPLEMENTATIONS))
    started = time.monotonic()
    devnet: Devnet | None = None
    try:
        if args.rpc_url:
            rpc_url = args.rpc_url
        else:
            devnet = Devnet(port=args.port or free_port()).start()
            rpc_url = devnet.rpc_url
            log(f"anvil started on {rpc_url}")
        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
        results, info = run(w3, impls, args.artifacts)
        meta = collect_meta(w3, results, info)
        meta["seconds"] = round(time.monotonic() - started, 1)
    except (BenchError, solcx.exceptions.SolcError, subprocess.SubprocessError, OSError) as exc:
        log(f"bench-gas failed: {exc}")
        return 1
    finally:
        if devnet is not None:
            devnet.stop()

    print(render_text_table(results, impls))
    print()
    for key in row_keys(results):
        doc = KEY_DOCS.get(key, "")
        print(textwrap.fill(f"{key}: {doc}", width=100, subsequent_indent="    "))
    if write:
        write_json(args.json, results, meta)
        write_markdown(args.markdown, render_markdown_section(results, meta))
        log(f"wrote {args.json} and the Gas section of {args.markdown}")
    log(f"done in {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
