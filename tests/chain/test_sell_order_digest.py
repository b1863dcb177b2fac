"""The sell order's EIP-712 digest computed directly (backend.chain.protocol.sell_order_signable)
is eth_account's encode_typed_data's, for any order; the contract accepting a signature over it
is in tests/contracts/test_resale.py."""

from __future__ import annotations

import random
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from backend.chain.protocol import (
    SECP256K1_N,
    ZERO_ADDRESS,
    recover_signer,
    sell_order_message,
    sell_order_signable,
    sell_order_typed_data,
    signable_of_typed_data,
)


def _orders() -> list[tuple[int, str, dict[str, Any]]]:
    rng = random.Random(19)
    wallets = [Account.create().address for _ in range(3)]
    orders = []
    for i in range(40):
        message = sell_order_message(
            rng.randrange(2**64) * 256 + rng.randrange(256),
            rng.randrange(2**96) * 10**9,
            rng.randrange(2**32) if i % 3 else 0,
            rng.randrange(2**40),
            buyer=wallets[0] if i % 4 == 1 else ZERO_ADDRESS,
            payee=wallets[1] if i % 2 else ZERO_ADDRESS,
        )
        orders.append((rng.choice([1, 31337, 84532]), wallets[2], message))
    # The extremes of every field.
    orders.append((2**256 - 1, wallets[2], sell_order_message(2**256 - 1, 2**256 - 1,
                                                             2**256 - 1, 2**256 - 1)))  # fmt: skip
    return orders


@pytest.mark.parametrize(("chain_id", "contract", "message"), _orders())
def test_the_direct_digest_is_encode_typed_datas(
    chain_id: int, contract: str, message: dict[str, Any]
) -> None:
    document = sell_order_typed_data(chain_id, contract, message)

    assert sell_order_signable(chain_id, contract, message) == encode_typed_data(
        full_message=document
    )


def test_a_document_as_the_api_hands_it_out_hashes_as_its_message() -> None:
    contract, wallet = Account.create().address, Account.create()
    message = sell_order_message(7 * 256, 10**17, 3, 1_900_000_000, payee=wallet.address)
    document = sell_order_typed_data(31337, contract, message)
    as_json = {**document, "message": {k: str(v) if isinstance(v, int) else v
                                       for k, v in message.items()}}  # fmt: skip

    signable = signable_of_typed_data(as_json)

    assert signable == encode_typed_data(full_message=document)
    signature = wallet.sign_message(signable).signature
    assert Account.recover_message(encode_typed_data(full_message=document),
                                   signature=signature) == wallet.address  # fmt: skip


@pytest.mark.parametrize(
    "change",
    [
        lambda d: {**d, "primaryType": "PurchasePermit"},
        lambda d: {**d, "domain": {**d["domain"], "name": "another dapp"}},
        lambda d: {**d, "types": {**d["types"], "SellOrder": d["types"]["SellOrder"][:-1]}},
    ],
)
def test_any_other_document_is_refused(change: Any) -> None:
    document = sell_order_typed_data(1, ZERO_ADDRESS, sell_order_message(256, 10**9, 0, 1))

    with pytest.raises(ValueError, match="not a fairtix SellOrder"):
        signable_of_typed_data(change(document))


def test_a_value_out_of_uint256_is_refused() -> None:
    with pytest.raises(ValueError, match="not a uint256"):
        sell_order_signable(1, ZERO_ADDRESS, sell_order_message(2**256, 0, 0, 1))


def _signed(signable: Any, key: Any) -> bytes:
    return bytes(key.sign_message(signable).signature)


def test_recover_signer_is_eth_accounts_recovery_for_signatures_the_contract_takes() -> None:
    rng = random.Random(7)
    for chain_id, contract, message in _orders():
        key = Account.create(extra_entropy=str(rng.random()))
        signable = sell_order_signable(chain_id, contract, message)
        signature = _signed(signable, key)
        expected = Account.recover_message(signable, signature=signature)
        assert recover_signer(signable, signature) == expected.lower() == key.address.lower()


def test_recover_signer_refuses_what_openzeppelins_ecdsa_refuses() -> None:
    key = Account.create()
    signable = sell_order_signable(
        31337, Account.create().address, sell_order_message(256, 1, 0, 9)
    )
    good = _signed(signable, key)
    r, s, v = good[:32], int.from_bytes(good[32:64], "big"), good[64]
    # The same signature with s in the upper half (and v flipped): eth_keys still recovers the
    # signer, the contract (ECDSA.tryRecover: InvalidSignatureS) does not.
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    assert Account.recover_message(signable, signature=high) == key.address
    assert recover_signer(signable, high) is None
    # A v of 0/1 or EIP-155 style: ecrecover answers address(0) for it on chain.
    for odd_v in (v - 27, v + 8, 0, 29):
        assert recover_signer(signable, good[:64] + bytes([odd_v])) is None
    for broken in (b"", good[:64], good + b"\x00", bytes(32) + good[32:], good[:32] + bytes(33)):
        assert recover_signer(signable, broken) is None
    assert recover_signer(signable, good) == key.address.lower()
