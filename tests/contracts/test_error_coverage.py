"""Every custom error in the contracts' ABIs is asserted, by its exact encoding, by some test;
every event they can emit is asserted with its arguments.

A static scan of this directory's tests for ``reverts(contract, "Name"``,
``encoded_error(contract, "Name"`` and ``logs(contract, "Name"``: it holds however the suite is
filtered (-k) or ordered.
"""

from __future__ import annotations

import re
from pathlib import Path

from backend.chain.artifacts import load_artifact

TESTS = Path(__file__).resolve().parent
ASSERTED = re.compile(r"\b(?:reverts|encoded_error)\(\s*[\w.\[\]]+\s*,\s*\"(\w+)\"")
LOGGED = re.compile(r"\blogs\(\s*[\w.\[\]]+\s*,\s*\"(\w+)\"")

# Errors in the ABIs that no code path of ours can raise, and why.
UNREACHABLE = {
    "ERC721InvalidSender": "ERC721Packed declares it (IERC721Errors) but mints bypass _update",
    "InvalidShortString": "EIP712's ShortStrings: the domain name and version are constants",
    "StringTooLong": "EIP712's ShortStrings: the domain name and version are constants",
    "FailedDeployment": "Clones: the CREATE2 address is taken only if the event id was used, "
    "which createEvent rejects first with EventAlreadyCreated",
    "InsufficientBalance": "Clones: the factory never sends value with a clone",
}


# Events in the ABIs that nothing in our contracts emits.
NEVER_EMITTED = {
    "RoleAdminChanged": "AccessControl: no role's admin is ever changed from DEFAULT_ADMIN_ROLE",
    "EIP712DomainChanged": "EIP-5267: the domain never changes",
    "MetadataUpdate": "ERC-4906: metadata changes per tier, which spans many tokens "
    "(BatchMetadataUpdate)",
}


def _scan(pattern: re.Pattern[str]) -> set[str]:
    names: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        if path.name != Path(__file__).name:
            names |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def asserted_errors() -> set[str]:
    return _scan(ASSERTED)


def _abi_names(kind: str) -> set[str]:
    return {
        entry["name"]
        for contract in ("TicketEvent", "TicketFactory")
        for entry in load_artifact(contract).abi
        if entry.get("type") == kind
    }


def abi_errors() -> set[str]:
    return _abi_names("error")


def test_every_reachable_error_is_asserted_by_some_test() -> None:
    missing = abi_errors() - asserted_errors() - set(UNREACHABLE)
    assert not missing, f"custom errors no test asserts: {sorted(missing)}"


def test_unreachable_errors_are_in_the_abi_and_untested() -> None:
    assert set(UNREACHABLE) <= abi_errors()
    assert not set(UNREACHABLE) & asserted_errors()


def test_every_emitted_event_is_asserted_by_some_test() -> None:
    missing = _abi_names("event") - _scan(LOGGED) - set(NEVER_EMITTED)
    assert not missing, f"events no test asserts: {sorted(missing)}"
    assert set(NEVER_EMITTED) <= _abi_names("event")
