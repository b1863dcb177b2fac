"""bench/RESULTS.md holds one section per benchmark between HTML comment markers; each benchmark
rewrites only its own section."""

from __future__ import annotations

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
