"""Compiles ``contracts/*.sol`` into the committed artifacts under ``contracts/build/``.

py-solc-x drives the compiler through its Standard JSON interface. The binary is
``FAIRTIX_SOLC_BINARY`` when set (a native solc), else ``scripts/solc``: a shim over the npm
``solc`` package, which is the official compiler built to WebAssembly and gives the same output.

Artifacts are rendered deterministically (sorted keys, fixed indentation) so a recompile of
unchanged sources is byte-identical, which is what lets a test detect stale artifacts.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.wrapper import get_version_str_from_solc_binary

from backend.chain.errors import CompilationFailed

SOLC_VERSION = "0.8.28"
"""The one compiler version the artifacts are built with."""

# 200 runs is the usual balance between deployment and call cost: TicketEvent is deployed once
# per event but mintBatch runs for every order, and the factory embeds TicketEvent's creation
# code, so a much higher value would push the factory towards EIP-170's size limit for little gain.
OPTIMIZER_RUNS = 200
EVM_VERSION = "cancun"
REMAPPINGS = ("@openzeppelin/=node_modules/@openzeppelin/",)
OUTPUTS = ("abi", "evm.bytecode.object", "evm.deployedBytecode.object")

CONTRACTS_DIR = "contracts"
BUILD_DIR = "contracts/build"


def compiler_settings() -> dict[str, Any]:
    """The Standard JSON ``settings`` object; recorded verbatim in every artifact."""
    return {
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "outputSelection": {"*": {"*": list(OUTPUTS)}},
        "remappings": list(REMAPPINGS),
    }


def solc_binary(root: Path) -> Path:
    """``FAIRTIX_SOLC_BINARY`` if set, else the repository's npm-solc shim."""
    configured = os.environ.get("FAIRTIX_SOLC_BINARY")
    return Path(configured) if configured else root / "scripts" / "solc"


def source_files(root: Path) -> list[Path]:
    """The project's own Solidity sources, in a stable order."""
    return sorted((root / CONTRACTS_DIR).glob("*.sol"))


def _resolve_source(root: Path, unit_name: str) -> Path:
    # Source unit names are paths relative to the root after remapping
    # (e.g. node_modules/@openzeppelin/...); unremapped OZ names live under node_modules.
    direct = root / unit_name
    return direct if direct.is_file() else root / "node_modules" / unit_name


def _source_hash(root: Path, unit_names: list[str]) -> str:
    pairs = [
        [name, _resolve_source(root, name).read_text(encoding="utf-8")]
        for name in sorted(unit_names)
    ]
    return hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode("utf-8")).hexdigest()


def compile_contracts(
    root: Path, *, report: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Compiles every ``contracts/*.sol`` under ``root``.

    Returns one artifact dict per contract defined in those files (not the imported OZ ones),
    keyed by contract name. Raises ``CompilationFailed`` listing solc's errors; warnings are
    passed to ``report`` (stderr by default).
    """
    emit = report or (lambda line: print(line, file=sys.stderr))
    root = root.resolve()
    sources = source_files(root)
    if not sources:
        raise CompilationFailed([f"no Solidity sources in {root / CONTRACTS_DIR}"])
    binary = solc_binary(root)
    if not binary.exists():
        raise CompilationFailed([f"solc binary not found: {binary}"])

    try:
        version = get_version_str_from_solc_binary(binary)
    except (OSError, SolcError, ValueError) as exc:
        raise CompilationFailed([f"cannot run {binary} --version: {exc}"]) from exc
    if not version.startswith(SOLC_VERSION + "+"):
        raise CompilationFailed([f"{binary} is solc {version}; artifacts need {SOLC_VERSION}"])

    settings = compiler_settings()
    input_json = {
        "language": "Solidity",
        "sources": {
            path.relative_to(root).as_posix(): {"content": path.read_text(encoding="utf-8")}
            for path in sources
        },
        "settings": settings,
    }
    try:
        # base_path/allow_paths matter to a native solc reading imports from disk; the shim
        # resolves imports itself and accepts them as no-ops.
        output = solcx.compile_standard(
            input_json, solc_binary=binary, base_path=root, allow_paths=root
        )
    except SolcError as exc:
        details = getattr(exc, "error_dict", None)
        if details:
            raise CompilationFailed(
                [
                    e.get("formattedMessage", e.get("message", "")).rstrip()
                    for e in details
                    if e.get("severity") == "error"
                ]
            ) from exc
        raise CompilationFailed([str(exc)]) from exc

    for diagnostic in output.get("errors", []):
        emit(diagnostic.get("formattedMessage", diagnostic.get("message", "")).rstrip())

    source_hash = _source_hash(root, list(output["sources"]))
    artifacts: dict[str, dict[str, Any]] = {}
    for unit_name in input_json["sources"]:
        for name, compiled in output["contracts"].get(unit_name, {}).items():
            artifacts[name] = {
                "_generated": (
                    "Generated by scripts/compile.py — do not edit. "
                    f"Compiled with Solidity v{SOLC_VERSION}"
                ),
                "contractName": name,
                "abi": compiled["abi"],
                "bytecode": "0x" + compiled["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                # The semver+commit part only, so a native solc and the npm build of the same
                # release (whose full strings differ in the platform suffix) agree.
                "compiler": {"version": version},
                "settings": settings,
                "sourceHash": source_hash,
            }
    return artifacts


def render_artifact(artifact: dict[str, Any]) -> str:
    """The exact on-disk text of an artifact."""
    return json.dumps(artifact, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def artifact_path(build_dir: Path, name: str) -> Path:
    return build_dir / f"{name}.json"


def write_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path) -> list[Path]:
    """Writes each artifact, rewriting only files whose content changed, and deletes artifacts of
    contracts that no longer exist; returns the paths written or deleted."""
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for orphan in _orphans(artifacts, build_dir):
        orphan.unlink()
        written.append(orphan)
    for name in sorted(artifacts):
        path = artifact_path(build_dir, name)
        text = render_artifact(artifacts[name])
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def stale_artifacts(artifacts: dict[str, dict[str, Any]], build_dir: Path) -> list[Path]:
    """Artifact files that are missing, differ from ``artifacts``, or belong to no contract."""
    stale = [
        artifact_path(build_dir, name)
        for name in sorted(artifacts)
        if not artifact_path(build_dir, name).is_file()
        or artifact_path(build_dir, name).read_text(encoding="utf-8")
        != render_artifact(artifacts[name])
    ]
    return stale + _orphans(artifacts, build_dir)


def _orphans(artifacts: dict[str, dict[str, Any]], build_dir: Path) -> list[Path]:
    if not build_dir.is_dir():
        return []
    return [p for p in sorted(build_dir.glob("*.json")) if p.stem not in artifacts]
