"""`.env.example` lists every environment variable the running code reads, so a deployment's
environment file can start from it (docs/OPERATIONS.md "First deployment")."""

from __future__ import annotations

import re

from .conftest import DEPLOY, REPO

RUNTIME = ["tdscore", "erp", "sync", "monitoring", "alerts", "dashboard", "zohosim"]
READS = [
    re.compile(r'env\.[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"'),
    re.compile(r'os\.environ(?:\.get)?[\[(]\s*"([A-Z][A-Z0-9_]+)"'),
    re.compile(r'getenv\(\s*"([A-Z][A-Z0-9_]+)"'),
]
SHELL_READS = re.compile(r"\$\{([A-Z][A-Z0-9_]+)[:}]")


def _read_by_the_code() -> set[str]:
    names: set[str] = set()
    sources = [path for app in RUNTIME for path in (REPO / app).rglob("*.py")] + [REPO / "gunicorn.conf.py"]
    for path in sources:
        if path.exists():
            text = path.read_text()
            names |= {name for pattern in READS for name in pattern.findall(text)}
    for script in DEPLOY.glob("*.sh"):
        names |= set(SHELL_READS.findall(script.read_text()))
    return names


def _listed() -> set[str]:
    text = (REPO / ".env.example").read_text()
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def test_env_example_lists_every_variable_the_code_reads():
    missing = _read_by_the_code() - _listed()
    assert not missing, f".env.example does not list {sorted(missing)}"


def test_env_example_lists_nothing_the_code_does_not_read():
    stale = _listed() - _read_by_the_code()
    assert not stale, f".env.example lists {sorted(stale)}, which nothing reads"
