"""NatSpec on every external or public function, event and error of the project's contracts.

The sources are read as text (compiling for userdoc/devdoc takes the WebAssembly compiler tens of
seconds): each declaration's ``///`` block must carry ``@notice`` (``@inheritdoc`` will do for a
function) and an ``@param`` for every named parameter. The artifacts' ABIs are the cross-check
that the parser found every declaration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.chain.artifacts import load_artifact

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
SOURCES = ("TicketEvent.sol", "TicketFactory.sol", "ERC721Packed.sol")

# ABI entries that come from OpenZeppelin (documented there), not from our sources.
INHERITED = {
    "DEFAULT_ADMIN_ROLE",
    "eip712Domain",
    "getRoleAdmin",
    "grantRole",
    "hasRole",
    "renounceRole",
    "revokeRole",
    # events of IERC721, IAccessControl, IERC5267 and IERC4906
    "Transfer",
    "MetadataUpdate",
    "BatchMetadataUpdate",
    "Approval",
    "ApprovalForAll",
    "RoleAdminChanged",
    "RoleGranted",
    "RoleRevoked",
    "EIP712DomainChanged",
    # errors of IERC721Errors, IAccessControl, ECDSA, ShortStrings, ReentrancyGuard, Clones, Errors
    "AccessControlBadConfirmation",
    "AccessControlUnauthorizedAccount",
    "ECDSAInvalidSignature",
    "ECDSAInvalidSignatureLength",
    "ECDSAInvalidSignatureS",
    "ERC721IncorrectOwner",
    "ERC721InsufficientApproval",
    "ERC721InvalidApprover",
    "ERC721InvalidOperator",
    "ERC721InvalidOwner",
    "ERC721InvalidReceiver",
    "ERC721InvalidSender",
    "ERC721NonexistentToken",
    "FailedDeployment",
    "InsufficientBalance",
    "InvalidShortString",
    "ReentrancyGuardReentrantCall",
    "StringTooLong",
}

DECLARATION = re.compile(r"^\s*(function|event|error)\s+(\w+)\s*\(", re.MULTILINE)
PUBLIC_VARIABLE = re.compile(
    r"^\s*[\w\[\]]+(?:\s+(?:constant|immutable))?\s+public\s+(?:constant\s+|immutable\s+)?(\w+)",
    re.MULTILINE,
)
KEYWORDS = {"calldata", "memory", "storage", "indexed", "payable"}


@dataclass(frozen=True)
class Declaration:
    source: str
    kind: str  # function, event, error, variable
    name: str
    params: tuple[str, ...]
    external: bool
    doc: str


def _closing_paren(text: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(text)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced parentheses")


def _param_names(params: str) -> tuple[str, ...]:
    names = []
    depth = 0
    current = ""
    for char in params + ",":
        if char == "," and depth == 0:
            tokens = [t for t in current.split() if t not in KEYWORDS]
            if len(tokens) >= 2:
                names.append(tokens[-1])
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    return tuple(names)


def _doc_above(text: str, index: int) -> str:
    """The ``///`` lines directly above the line containing ``index``."""
    lines = text[: text.rfind("\n", 0, index) + 1].splitlines()
    doc: list[str] = []
    for line in reversed(lines):
        stripped = line.strip()
        if not stripped.startswith("///"):
            break
        doc.append(stripped[3:].strip())
    return "\n".join(reversed(doc))


def declarations(source: str) -> list[Declaration]:
    text = (CONTRACTS / source).read_text(encoding="utf-8")
    found = []
    for match in DECLARATION.finditer(text):
        kind, name = match.group(1), match.group(2)
        close = _closing_paren(text, match.end() - 1)
        params = _param_names(text[match.end() : close])
        header_end = min(i for i in (text.find("{", close), text.find(";", close)) if i != -1)
        header = text[close:header_end]
        external = kind != "function" or bool(re.search(r"\b(external|public)\b", header))
        found.append(
            Declaration(source, kind, name, params, external, _doc_above(text, match.start()))
        )
    for match in PUBLIC_VARIABLE.finditer(text):
        found.append(
            Declaration(
                source, "variable", match.group(1), (), True, _doc_above(text, match.start())
            )
        )
    return found


def _documented(declaration: Declaration) -> list[str]:
    """What ``declaration``'s NatSpec lacks."""
    doc = declaration.doc
    missing = []
    if "@inheritdoc" in doc and declaration.kind == "function":
        return missing
    if "@notice" not in doc:
        missing.append("@notice")
    documented = set(re.findall(r"@param\s+(\w+)", doc))
    missing += [f"@param {name}" for name in declaration.params if name not in documented]
    return missing


ALL = [d for source in SOURCES for d in declarations(source) if d.external]


@pytest.mark.parametrize("declaration", ALL, ids=lambda d: f"{d.source}:{d.kind}:{d.name}")
def test_natspec_documents_every_external_declaration(declaration: Declaration) -> None:
    missing = _documented(declaration)
    assert not missing, f"{declaration.source} {declaration.kind} {declaration.name}: {missing}"


def test_natspec_parser_finds_every_abi_entry() -> None:
    parsed = {d.name for d in ALL}
    for contract in ("TicketEvent", "TicketFactory"):
        abi = load_artifact(contract).abi
        names = {e["name"] for e in abi if e.get("type") in ("function", "event", "error")}
        unaccounted = names - parsed - INHERITED
        assert not unaccounted, f"{contract} ABI entries the NatSpec check missed: {unaccounted}"
