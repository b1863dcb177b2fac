"""What a ticket holder's wallet does on chain in the cancellation tests: move a ticket, claim a
refund, and what a refused call reverted with."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.types import TxReceipt

from backend.chain.artifacts import load_artifact
from backend.chain.client import ChainClient
from backend.chain.errors import RevertDecoder
from tests.payments.wallets import buy, fund, sign_checkout_tx


def w3_of(chain: ChainClient) -> Web3:
    w3: Web3 = chain._w3
    return w3


def transfer_tx(
    chain: ChainClient, contract: str, sender: str, recipient: str, token_id: int
) -> dict[str, Any]:
    """An unsigned ``transferFrom`` in the shape checkout hands wallets (hex value)."""
    ticket_event = w3_of(chain).eth.contract(
        address=Web3.to_checksum_address(contract), abi=load_artifact("TicketEvent").abi
    )
    data = ticket_event.encode_abi(
        "transferFrom",
        args=[Web3.to_checksum_address(sender), Web3.to_checksum_address(recipient), token_id],
    )
    return {"to": contract, "data": data, "value": "0x0", "chainId": chain.chain_id}


def transfer(
    chain: ChainClient, contract: str, holder: LocalAccount, recipient: str, token_id: int
) -> TxReceipt:
    fund(w3_of(chain), holder.address)
    return buy(
        w3_of(chain), holder, transfer_tx(chain, contract, holder.address, recipient, token_id)
    )


def send(chain: ChainClient, wallet: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
    """Send an unsigned transaction from the API (e.g. a refund claim) from ``wallet``."""
    return buy(w3_of(chain), wallet, tx)


def revert_of(chain: ChainClient, wallet: LocalAccount, tx: dict[str, Any]) -> str:
    """The custom error ``tx`` reverts with when ``wallet`` tries to send it."""
    try:
        sign_checkout_tx(w3_of(chain), wallet, tx)
    except ContractCustomError as exc:
        decoder = RevertDecoder([load_artifact("TicketEvent").abi])
        return decoder.decode(bytes.fromhex(str(exc.data)[2:])).name
    raise AssertionError("the transaction did not revert")
