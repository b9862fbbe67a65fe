"""docs/RELIABILITY.md: every guarantee names a test, and every test it names exists, so a renamed or
removed test cannot leave a guarantee standing on nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "RELIABILITY.md"


def references(text: str) -> list[tuple[str, str]]:
    """(file, test name or "") for each `tests/…py[::name]` and each `::name` (of the file before it)."""
    found, current = [], ""
    for token in re.findall(r"`([^`]+)`", text):
        if token.startswith("tests/"):
            current, _, name = token.partition("::")
            found.append((current, name))
        elif token.startswith("::") and current:
            found.append((current, token[2:]))
    return found


def test_every_test_the_reliability_page_names_exists():
    missing = []
    for path, name in references(DOC.read_text()):
        source = ROOT / path
        if path.endswith("/"):
            if not source.is_dir():
                missing.append(path)
            continue
        if not source.is_file() or (name and not re.search(rf"^(async )?def {name}\(", source.read_text(), re.M)):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == [], f"{len(missing)} named tests do not exist: {missing}"


def test_every_guarantee_names_a_test():
    section = DOC.read_text().split("## Guaranteed", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Guarantee")]
    unshown = [row[:80] for row in rows if not references(row.split("|")[2])]
    assert rows and unshown == [], f"{len(unshown)} of {len(rows)} guarantees name no test: {unshown}"
