"""The README is where a newcomer looks first: it names every environment variable the code reads and
every path of the operations API, so nothing there has to be found in the source."""

from __future__ import annotations

import re

from django.urls import get_resolver

from .conftest import REPO
from .test_env_example import _read_by_the_code

README = (REPO / "README.md").read_text()


def test_the_readme_names_every_environment_variable_the_code_reads():
    missing = sorted(name for name in _read_by_the_code() if not re.search(rf"\b{name}\b", README))
    assert not missing, f"README.md does not mention {missing}"


def _api_paths() -> set[str]:
    api = get_resolver().namespace_dict["api"][1]
    paths = set()
    for pattern in api.url_patterns:
        route = str(pattern.pattern)
        paths.add("/api/" + re.sub(r"<(?:\w+:)?(\w+)>", "<id>", route).rstrip("/"))
    return paths


def _listed_paths() -> set[str]:
    """Paths the README names, with its short form for siblings: `…/<id>/retry, /discard`."""
    listed = set()
    for path, siblings in re.findall(r"(/api/[\w/<>-]+)((?:, /[\w-]+)*)", README):
        path = path.rstrip("/")
        listed.add(path)
        listed |= {path.rsplit("/", 1)[0] + "/" + tail for tail in re.findall(r", /([\w-]+)", siblings)}
    return listed


def test_the_readme_lists_every_path_of_the_operations_api():
    missing = sorted(_api_paths() - _listed_paths())
    assert not missing, f"README.md's API table does not list {missing}"
