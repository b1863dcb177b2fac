"""An in-process chain for tests: eth-tester on py-evm, no node, no network.

The signer is a fresh key funded from one of eth-tester's prefunded accounts, so tests send
locally signed raw transactions exactly as the backend does against anvil or a real chain.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3.providers.eth_tester.defaults import API_ENDPOINTS
from web3.types import RPCError, RPCResponse

from backend.chain.types import Wei

SIGNER_FUNDING = Wei(1_000 * 10**18)

_Delegator = Callable[[EthereumTester, Any], Any]


def eth_tester_web3(funding: Wei = SIGNER_FUNDING) -> tuple[Web3, LocalAccount]:
    """A fresh in-process chain and a funded signer that is not one of eth-tester's accounts.

    py-evm's default fork here is Prague, which runs the ``cancun`` bytecode the artifacts target.
    """
    tester = EthereumTester(PyEVMBackend())
    w3 = Web3(EthereumTesterProvider(tester, api_endpoints=_endpoints_with_revert_data()))
    return w3, funded_account(w3, funding)


def funded_account(w3: Web3, funding: Wei = SIGNER_FUNDING) -> LocalAccount:
    """A new key holding ``funding`` wei, paid by eth-tester's first prefunded account."""
    account: LocalAccount = Account.create()
    # eth-tester holds the keys of its own accounts, so this unsigned send is signed in-process.
    tx_hash = w3.eth.send_transaction(
        {"from": w3.eth.accounts[0], "to": account.address, "value": funding}
    )
    w3.eth.wait_for_transaction_receipt(tx_hash)
    return account


def _endpoints_with_revert_data() -> dict[str, dict[str, Any]]:
    """web3's eth-tester endpoints, but reverts in eth_call / eth_estimateGas surface like a real
    node's: a JSON-RPC error with code 3 and the raw revert data.

    Stock web3 + eth-tester flattens custom-error revert data into a ``repr`` string inside
    eth_tester's ``TransactionFailed``, which only string matching could undo. With this, web3
    raises ``ContractCustomError`` with ``.data`` exactly as it does against anvil or geth, so
    the backend's selector-based decoding is the one code path tested.
    """
    endpoints = copy.copy(API_ENDPOINTS)
    eth = dict(endpoints["eth"])
    for name in ("call", "estimateGas"):
        eth[name] = _surface_revert_data(eth[name])
    endpoints["eth"] = eth
    return endpoints


def _surface_revert_data(delegator: _Delegator) -> _Delegator:
    def delegate(tester: EthereumTester, params: Any) -> Any:
        try:
            return delegator(tester, params)
        except TransactionFailed as exc:
            data = _revert_bytes(exc)
            if data is None:
                # eth_call reports only the revert's text; py-evm's estimate_gas keeps the raw
                # exception, so re-running the same message through it recovers the bytes.
                try:
                    tester.estimate_gas(*params)
                except TransactionFailed as again:
                    data = _revert_bytes(again)
            if data is None:
                raise
            error = RPCError(code=3, message="execution reverted", data="0x" + data.hex())
            raise_contract_logic_error_on_revert(RPCResponse(jsonrpc="2.0", id=0, error=error))
            raise  # not reached: the call above always raises for an error response

    return delegate


def _revert_bytes(exc: TransactionFailed) -> bytes | None:
    """The raw revert payload of the py-evm ``Revert`` that ``exc`` wraps, if any."""
    inner = exc.args[0] if exc.args else None
    if isinstance(inner, Exception):
        inner = inner.args[0] if inner.args else b""
    return inner if isinstance(inner, bytes) else None
