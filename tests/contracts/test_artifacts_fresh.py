"""The committed artifacts in contracts/build/ must be exactly what the sources compile to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.chain.compiler import BUILD_DIR, compile_contracts, write_artifacts

ROOT = Path(__file__).resolve().parents[2]
FIX = "run `python scripts/compile.py` and commit contracts/build/"

# The WebAssembly compiler takes several seconds per run: compile once for the module.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fresh() -> dict[str, dict[str, Any]]:
    return compile_contracts(ROOT, report=lambda _line: None)


def test_committed_artifacts_match_a_fresh_compile(
    fresh: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    write_artifacts(fresh, tmp_path)
    committed_dir = ROOT / BUILD_DIR

    new = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_bytes() for p in committed_dir.glob("*.json")}

    missing = sorted(set(new) - set(committed))
    assert not missing, f"missing artifacts {missing} in {committed_dir}: {FIX}"
    orphaned = sorted(set(committed) - set(new))
    assert not orphaned, f"artifacts {orphaned} match no contract in contracts/*.sol: {FIX}"
    stale = sorted(name for name in new if new[name] != committed[name])
    assert not stale, f"stale artifacts {stale} in {committed_dir}: {FIX}"


def test_rewriting_unchanged_artifacts_writes_nothing(
    fresh: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert len(write_artifacts(fresh, tmp_path)) == len(fresh)
    assert write_artifacts(fresh, tmp_path) == []


def test_artifacts_are_only_for_project_contracts_and_fit_eip170(
    fresh: dict[str, dict[str, Any]],
) -> None:
    assert sorted(fresh) == ["ERC721Packed", "TicketEvent", "TicketFactory"]
    # ERC721Packed is abstract: an ABI for tools, no bytecode.
    assert fresh["ERC721Packed"]["deployedBytecode"] == "0x"
    for name in ("TicketEvent", "TicketFactory"):
        artifact = fresh[name]
        runtime_bytes = (len(artifact["deployedBytecode"]) - 2) // 2
        assert 0 < runtime_bytes <= 24_576, f"{name} runtime is {runtime_bytes} bytes"
    for artifact in fresh.values():
        assert artifact["settings"]["evmVersion"] == "cancun"
        assert artifact["compiler"]["version"].startswith("0.8.28+commit.")
