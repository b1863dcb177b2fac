"""A buyer's wallet on a test chain: funding it and sending the transaction checkout returned."""

from __future__ import annotations

from typing import Any, cast

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxParams, TxReceipt, Wei

ETHER = 10**18


def fund(w3: Web3, address: str, amount: int = 10 * ETHER) -> None:
    """Pay ``amount`` wei to ``address`` from the node's first unlocked account."""
    tx_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": Web3.to_checksum_address(address), "value": Wei(amount)}
    )
    w3.eth.wait_for_transaction_receipt(tx_hash)


def sign_checkout_tx(w3: Web3, wallet: LocalAccount, tx: dict[str, Any]) -> HexBytes:
    """What a wallet does with checkout's unsigned transaction: add gas, fees and nonce; sign."""
    params: TxParams = {
        "from": wallet.address,
        "to": Web3.to_checksum_address(tx["to"]),
        "data": tx["data"],
        "value": Wei(int(tx["value"], 16)),
        "chainId": tx["chainId"],
        "nonce": w3.eth.get_transaction_count(wallet.address),
        "gasPrice": w3.eth.gas_price,
    }
    params["gas"] = w3.eth.estimate_gas(params)
    return HexBytes(wallet.sign_transaction(cast(dict[str, Any], params)).raw_transaction)


def send_raw(w3: Web3, raw: HexBytes) -> TxReceipt:
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1
    return receipt


def buy(w3: Web3, wallet: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
    return send_raw(w3, sign_checkout_tx(w3, wallet, tx))
