"""Every named route of the project, the admin's included, reverses to its own path and resolves back
to its own view. A name defined twice in one namespace fails here: reverse() can return only one of the
two paths, so the other route is unreachable by name (and may be answered by the wrong view)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, converters, get_resolver, resolve, reverse
from django.urls.resolvers import RegexPattern, RoutePattern
from django.utils.regex_helper import normalize

# A sample value per converter type; a route whose converter is not here fails until one is added.
SAMPLES: dict[type, object] = {
    converters.IntConverter: 1,
    converters.StringConverter: "products",
    converters.SlugConverter: "products",
    converters.PathConverter: "products",
    converters.UUIDConverter: uuid.UUID(int=1),
}
# A regex group (re_path) takes the first of these it matches: "products", else a literal alternative
# of the group itself, e.g. the admin's app_list `(?P<app_label>auth|sync|…)`.
REGEX_SAMPLE = "products"


@dataclass(frozen=True)
class Route:
    name: str  # with its namespaces, as reverse() takes it
    layers: tuple[RoutePattern | RegexPattern, ...]  # from the root URLconf down to the pattern
    callback: object

    def kwargs(self) -> dict[str, str]:
        """A sample for each parameter, already in URL form (what the converter's to_url gives)."""
        values = {}
        for layer in self.layers:
            if isinstance(layer, RoutePattern):
                for name, converter in layer.converters.items():
                    assert type(converter) in SAMPLES, f"{self.name}: no sample for {type(converter).__name__}"
                    values[name] = converter.to_url(SAMPLES[type(converter)])
            else:
                values |= {name: _regex_sample(layer.regex, name) for name in layer.regex.groupindex}
        return values

    def path(self) -> str:
        """The path this pattern names, built from its own layers (not looked up by name)."""
        values = self.kwargs()
        parts = []
        for layer in self.layers:
            template, params = normalize(layer.regex.pattern)[0]
            parts.append(template % {name: values[name] for name in params})
        return "/" + "".join(parts)


def _regex_sample(regex: re.Pattern, name: str) -> str:
    group = re.search(rf"\(\?P<{name}>([^()]*)\)", regex.pattern)
    assert group, f"cannot read the group {name!r} of {regex.pattern!r}"
    for candidate in [REGEX_SAMPLE, *group.group(1).split("|")]:
        if re.fullmatch(group.group(1), candidate):
            return candidate
    raise AssertionError(f"no sample for the group {name!r} of {regex.pattern!r}")


def _routes(resolver: URLResolver, namespace: str = "", layers: tuple = ()) -> Iterator[Route]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _routes(entry, inner, (*layers, entry.pattern))
        elif isinstance(entry, URLPattern) and entry.name:
            yield Route(f"{namespace}{entry.name}", (*layers, entry.pattern), entry.callback)


ROUTES = list(_routes(get_resolver()))


def test_the_walk_reaches_every_urlconf():
    names = {route.name for route in ROUTES}

    assert {"health", "webhook", "admin:index", "api:schema", "dashboard:index"} <= names


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.name}@{r.path()}" for r in ROUTES])
def test_a_named_route_reverses_to_its_own_path_and_resolves_to_its_own_view(route: Route):
    path = reverse(route.name, kwargs=route.kwargs())
    match = resolve(path)

    assert path == route.path()
    assert match.view_name == route.name
    assert match.func is route.callback
