"""The checkout is self-contained (a clone on a new machine has nothing beside it): no tracked file
reads or points at the project's steering folder outside the checkout, and none cites a document the
clone does not have; comments and docs cite docs/ instead."""

from __future__ import annotations

import re
import subprocess

from .conftest import REPO

# The steering folder, the steering documents and the issue tracker live outside the repository.
# Spelt in pieces so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./sha" + r"red|parents\[\d\]\.parent\s*/\s*\"sha" + r"red\"|/work/sha" + "red")
PRIVATE = re.compile(r"\b(?:" + "SP" + r"EC\b|DES" + r"IGN\b|CONVEN" + r"TIONS\b|[Ii]ss" + r"ue #?\d+)")
BINARY = {".png", ".lz4", ".gz"}


def _tracked_lines():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        path = REPO / name
        if name == ".ci/run" or not path.is_file() or path.suffix in BINARY:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            yield f"{name}:{number}", line


def test_no_tracked_file_points_outside_the_checkout():
    offenders = [where for where, line in _tracked_lines() if OUTSIDE.search(line)]
    assert not offenders, offenders


def test_no_tracked_file_cites_a_document_the_checkout_lacks():
    offenders = [f"{where}: {line.strip()[:100]}" for where, line in _tracked_lines() if PRIVATE.search(line)]
    assert not offenders, f"{len(offenders)} lines cite documents outside the repository:\n" + "\n".join(offenders)
