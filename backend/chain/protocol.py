"""Pure encodings of the ticket protocol (no web3 calls): token ids, packed card-mint batches,
EIP-712 typed data for purchase permits and sell orders.

The Solidity side of each lives in contracts/TicketEvent.sol and contracts/TicketTypes.sol; the
tests in tests/contracts pin both sides to each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_account.messages import SignableMessage
from eth_hash.auto import keccak
from eth_utils.address import to_canonical_address

MAX_ORDER_QUANTITY = 255
"""Tickets in one order or permit: token ids are ``order_id * 256 + index``."""
MAX_ORDER_ID = 2**64 - 1
DOMAIN_NAME = "fairtix TicketEvent"
DOMAIN_VERSION = "1"

PERMIT_TYPES: dict[str, list[dict[str, str]]] = {
    "PurchasePermit": [
        {"name": "buyer", "type": "address"},
        {"name": "tier", "type": "uint256"},
        {"name": "quantity", "type": "uint256"},
        {"name": "unitPrice", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
SELL_ORDER_TYPES: dict[str, list[dict[str, str]]] = {
    "SellOrder": [
        {"name": "tokenId", "type": "uint256"},
        {"name": "price", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
        {"name": "buyer", "type": "address"},
        {"name": "payee", "type": "address"},
    ]
}
ZERO_ADDRESS = "0x" + "00" * 20


@dataclass(frozen=True, slots=True)
class CardMint:
    """One card order to mint: ``recipients[i]`` receives token ``order_id * 256 + i``."""

    order_id: int
    tier: int
    recipients: tuple[str, ...]


def token_ids(order_id: int, quantity: int) -> tuple[int, ...]:
    """The token ids an order (card) or permit nonce (crypto) issues."""
    _check_order(order_id, quantity)
    return tuple((order_id << 8) + i for i in range(quantity))


def order_of(token_id: int) -> int:
    """The order id (or permit nonce) that issued ``token_id``."""
    return token_id >> 8


def encode_mint_batch(orders: Iterable[CardMint]) -> bytes:
    """``mintBatch``'s packed argument: per order ``order_id`` (8 bytes) | ``tier`` (1 byte) |
    ``count`` (1 byte) | ``count`` 20-byte recipients."""
    out = bytearray()
    for order in orders:
        _check_order(order.order_id, len(order.recipients))
        if not 0 <= order.tier < 16:
            raise ValueError(f"tier {order.tier} is out of range (0-15)")
        out += order.order_id.to_bytes(8, "big")
        out += bytes([order.tier, len(order.recipients)])
        for recipient in order.recipients:
            out += to_canonical_address(recipient)
    return bytes(out)


def domain(chain_id: int, event_address: str) -> dict[str, Any]:
    """The EIP-712 domain of one event's contract: permits and orders bind chain and contract."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": event_address,
    }


def permit_message(
    buyer: str, tier: int, quantity: int, unit_price: int, nonce: int, deadline: int
) -> dict[str, Any]:
    _check_order(nonce, quantity)
    return {
        "buyer": buyer,
        "tier": tier,
        "quantity": quantity,
        "unitPrice": unit_price,
        "nonce": nonce,
        "deadline": deadline,
    }


def sell_order_message(
    token_id: int,
    price: int,
    nonce: int,
    deadline: int,
    *,
    buyer: str = ZERO_ADDRESS,
    payee: str = ZERO_ADDRESS,
) -> dict[str, Any]:
    """A ``SellOrder`` (TicketTypes.sol): the one place its fields are named. Everything that
    signs, verifies or submits a sell order builds it here, with SELL_ORDER_TYPES. ``buyer`` is
    the only wallet that may receive the ticket (zero: anyone); ``payee`` is credited the
    seller's proceeds (zero: the seller; the backend's treasury for a seller paid back by card).
    Price 0 is a gift, which must name its buyer."""
    return {
        "tokenId": token_id,
        "price": price,
        "nonce": nonce,
        "deadline": deadline,
        "buyer": buyer,
        "payee": payee,
    }


EIP712_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def sell_order_typed_data(
    chain_id: int, event_address: str, message: dict[str, Any]
) -> dict[str, Any]:
    """The full EIP-712 document of a sell order (``eth_signTypedData_v4``'s argument): what a
    wallet needs, and nothing else, to sign it."""
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **SELL_ORDER_TYPES},
        "primaryType": "SellOrder",
        "domain": domain(chain_id, event_address),
        "message": message,
    }


# -- a sell order's EIP-712 digest, computed directly ---------------------------------------
# eth_account's encode_typed_data walks any document generically (type graph, per-field
# dispatch, validation): a tenth of a millisecond per order, on every listing request, for a
# layout that never changes. These hash the one layout SELL_ORDER_TYPES names; tests pin the
# result to encode_typed_data's and to the contract's.


def _type_string(name: str, fields: Sequence[dict[str, str]]) -> bytes:
    return f"{name}({','.join(f['type'] + ' ' + f['name'] for f in fields)})".encode()


_DOMAIN_TYPEHASH = keccak(_type_string("EIP712Domain", EIP712_DOMAIN_TYPE))
_SELL_ORDER_FIELDS = SELL_ORDER_TYPES["SellOrder"]
_SELL_ORDER_TYPEHASH = keccak(_type_string("SellOrder", _SELL_ORDER_FIELDS))


@lru_cache(maxsize=4096)
def _domain_separator(chain_id: int, event_address: str) -> bytes:
    return keccak(
        _DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + _word(chain_id)
        + _address_word(event_address)
    )


def sell_order_signable(
    chain_id: int, event_address: str, message: dict[str, Any]
) -> SignableMessage:
    """What a wallet signs for a sell order (``eth_signTypedData_v4`` of
    :func:`sell_order_typed_data`): the EIP-712 domain separator and the order's struct hash,
    as eth_account's ``encode_typed_data`` answers them, for its ``sign_message`` and
    ``recover_message``. uint256 fields may be ints or decimal strings (the API's JSON)."""
    fields = b"".join(
        _word(int(message[f["name"]]))
        if f["type"] == "uint256"
        else _address_word(message[f["name"]])
        for f in _SELL_ORDER_FIELDS
    )
    return SignableMessage(
        b"\x01", _domain_separator(chain_id, event_address), keccak(_SELL_ORDER_TYPEHASH + fields)
    )


# secp256k1's group order: an ECDSA signature's r and s are below it, and OpenZeppelin's ECDSA
# (the contract's check) takes only the lower half of s, so each signature has one form.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def recover_signer(signable: SignableMessage, signature: bytes) -> str | None:
    """The address (lowercase hex) whose key made ``signature`` (65 bytes: r, s, v) over
    ``signable``'s EIP-191 digest, under the rules of OpenZeppelin's ``ECDSA.tryRecover``, which
    the contract applies: v is 27 or 28, 0 < r < n, 0 < s <= n/2. None for anything else, which
    the contract would refuse. libsecp256k1 (coincurve) straight away: eth_account's
    recover_message goes through eth_keys' objects and a checksummed address, twice the CPU,
    and takes a v and a high s the contract refuses."""
    if len(signature) != 65:
        return None
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28) or not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        return None
    digest = keccak(b"\x19" + signable.version + signable.header + signable.body)
    try:
        key = PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), digest, hasher=None
        )
    except ValueError:  # no point on the curve has that r
        return None
    return "0x" + keccak(key.format(compressed=False)[1:])[-20:].hex()


def signable_of_typed_data(typed_data: dict[str, Any]) -> SignableMessage:
    """:func:`sell_order_signable` of a whole document as the API hands it out; ValueError for
    any document that is not a sell order of this layout and domain."""
    domain_ = typed_data["domain"]
    if (
        typed_data.get("primaryType") != "SellOrder"
        or typed_data["types"] != {"EIP712Domain": EIP712_DOMAIN_TYPE, **SELL_ORDER_TYPES}
        or (domain_["name"], domain_["version"]) != (DOMAIN_NAME, DOMAIN_VERSION)
    ):
        raise ValueError("not a fairtix SellOrder document")
    return sell_order_signable(
        int(domain_["chainId"]), domain_["verifyingContract"], typed_data["message"]
    )


def _word(value: int) -> bytes:
    if not 0 <= value < 2**256:
        raise ValueError(f"{value} is not a uint256")
    return value.to_bytes(32, "big")


@lru_cache(maxsize=4096)
def _address_word(address: str) -> bytes:
    # Cached: a sell order's buyer and payee are mostly the zero address and the treasury,
    # and eth_utils' validation is a good part of hashing an order.
    return bytes(12) + to_canonical_address(address)


def _check_order(order_id: int, quantity: int) -> None:
    if not 0 <= order_id <= MAX_ORDER_ID:
        raise ValueError(f"order id {order_id} doesn't fit in 64 bits")
    if not 1 <= quantity <= MAX_ORDER_QUANTITY:
        raise ValueError(f"an order holds 1-{MAX_ORDER_QUANTITY} tickets, not {quantity}")


def as_tuple(message: dict[str, Any], types: Sequence[dict[str, str]]) -> tuple[Any, ...]:
    """A typed-data message as the ABI tuple the contract takes."""
    return tuple(message[field["name"]] for field in types)
