"""The checkout is self-contained (a clone on a new machine has nothing beside it): no tracked file
reads or points at the project's steering folder outside the checkout."""

from __future__ import annotations

import re
import subprocess

from .conftest import REPO

OUTSIDE = re.compile(r"\.\./shared|parents\[\d\]\.parent\s*/\s*\"shared\"|/work/shared")


def test_no_tracked_file_points_outside_the_checkout():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in tracked:
        path = REPO / name
        if (
            name in {".ci/run", "tests/deploy/test_self_contained.py"}
            or not path.is_file()
            or path.suffix in {".png", ".lz4", ".gz"}
        ):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not offenders, offenders
