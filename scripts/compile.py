#!/usr/bin/env python3
"""Compile contracts/*.sol into the committed artifacts in contracts/build/.

The compiler is solc 0.8.28 driven through py-solc-x's Standard JSON interface:
  * FAIRTIX_SOLC_BINARY=/path/to/solc   use a native solc 0.8.28, if you have one;
  * otherwise scripts/solc, a shim over the npm `solc` package (the official compiler built to
    WebAssembly, identical output). It needs node_modules: run `npm ci` once.

Settings (optimizer 200 runs, evmVersion cancun, @openzeppelin/ remapped to node_modules) live in
backend/chain/compiler.py. Artifacts are written deterministically, so recompiling unchanged
sources changes nothing, and tests/contracts/test_artifacts_fresh.py fails when they are stale.

examples:
  python scripts/compile.py            compile and (re)write changed artifacts
  python scripts/compile.py --check    exit 1 naming stale artifacts, write nothing (CI)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script, the package need not be installed

from backend.chain.compiler import (  # noqa: E402
    BUILD_DIR,
    compile_contracts,
    solc_binary,
    source_files,
    stale_artifacts,
    write_artifacts,
)
from backend.chain.errors import CompilationFailed  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python scripts/compile.py",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare: exit 1 and list stale artifacts, write nothing",
    )
    args = parser.parse_args(argv)

    build_dir = ROOT / BUILD_DIR
    sources = [p.relative_to(ROOT).as_posix() for p in source_files(ROOT)]
    print(f"compiling {', '.join(sources)} with {solc_binary(ROOT)} ...", flush=True)
    try:
        artifacts = compile_contracts(ROOT, report=lambda line: print(line, file=sys.stderr))
    except CompilationFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, artifact in sorted(artifacts.items()):
        runtime = (len(artifact["deployedBytecode"]) - 2) // 2
        print(f"  {name}: runtime {runtime:,} bytes (EIP-170 limit 24,576)")

    if args.check:
        stale = stale_artifacts(artifacts, build_dir)
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run `python scripts/compile.py` and commit contracts/build/", file=sys.stderr)
            return 1
        print("artifacts are up to date")
        return 0

    changed = write_artifacts(artifacts, build_dir)
    for path in changed:
        print(f"  wrote {path.relative_to(ROOT)}" if path.exists() else f"  removed {path}")
    print(f"{len(changed)} artifact(s) changed" if changed else "artifacts already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
