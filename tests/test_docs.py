"""The docs stay true to the code: every setting in docs/configuration.md, every link resolves."""

from __future__ import annotations

import re
from pathlib import Path

from backend.config import REPO_ROOT, Settings

CONFIGURATION = REPO_ROOT / "docs" / "configuration.md"
SETTINGS_HEADER = "| variable | default | meaning |"


def _settings_rows() -> dict[str, str]:
    """The first table of docs/configuration.md: variable -> its default cell."""
    lines = CONFIGURATION.read_text(encoding="utf-8").splitlines()
    start = lines.index(SETTINGS_HEADER) + 2  # past the header and its |---| line
    rows: dict[str, str] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        variable, default = (cell.strip() for cell in line.strip("|").split("|")[:2])
        rows[variable.strip("`")] = default
    return rows


def _literal_default(value: object) -> str | None:
    """How the table writes a default that is a plain value; None for derived or unset ones."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float) or (isinstance(value, str) and value):
        return f"`{value}`"
    return None


def test_every_setting_has_its_row_with_the_codes_default() -> None:
    rows = _settings_rows()
    fields = {f"FAIRTIX_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert sorted(set(fields) - set(rows)) == [], "settings missing from docs/configuration.md"
    assert sorted(set(rows) - set(fields)) == [], "rows in docs/configuration.md name no setting"
    for variable, field in fields.items():
        expected = _literal_default(field.default)
        if expected is not None:
            assert rows[variable] == expected, variable
        else:
            assert rows[variable], f"{variable}: say what the default is (unset, empty, derived)"


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    documented = set(re.findall(r"FAIRTIX_[A-Z0-9_]+", CONFIGURATION.read_text(encoding="utf-8")))
    sources = [REPO_ROOT / "Makefile", REPO_ROOT / ".ci" / "run"]
    for folder in ("backend", "scripts", "bench", "tests"):
        sources += (REPO_ROOT / folder).rglob("*.py")
        sources += (REPO_ROOT / folder).rglob("*.sh")
    used: dict[str, Path] = {}
    for path in sources:
        if path.resolve() == Path(__file__).resolve():
            continue
        for name in re.findall(r"FAIRTIX_[A-Z0-9_]+", path.read_text(encoding="utf-8")):
            if not name.endswith("_"):  # a prefix a message completes, not a variable
                used.setdefault(name, path.relative_to(REPO_ROOT))
    missing = {name: str(path) for name, path in used.items() if name not in documented}
    assert missing == {}, "environment variables missing from docs/configuration.md"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_the_readme_and_docs_resolve() -> None:
    pages = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # http(s), mailto: not ours to check here
            path_part, _, fragment = target.partition("#")
            linked = (page.parent / path_part).resolve() if path_part else page
            if not linked.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif fragment and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(encoding="utf-8"), re.M)
                if fragment not in {_anchor(heading) for heading in headings}:
                    broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []
