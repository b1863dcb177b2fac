"""bench/RESULTS.md holds one section per benchmark between HTML comment markers; each benchmark
rewrites only its own section."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

RESULTS_MD = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(start: str, end: str, section: str, path: Path = RESULTS_MD) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) in place of the
    previous one, or append it when there is none yet."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1] if end in rest else ""
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def figure_table(rows: Sequence[tuple[str, object]]) -> list[str]:
    """A section's two-column table of figures, as Markdown lines."""
    return ["| figure | value |", "|---|---|", *[f"| {name} | {value} |" for name, value in rows]]


def bench_parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--help`` prints the module's text after its first line."""
    return argparse.ArgumentParser(
        prog=prog,
        description=doc.split("\n\n", 1)[1] if doc else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
