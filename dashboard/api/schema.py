"""Answers every operation can give besides its own, added to the OpenAPI schema in one place.

DRF answers them for every view alike (authentication, permission, throttling, a page past the
end, a filter value it refuses), so they are declared here rather than on each view; schemathesis
(tests/dashboard/test_schemathesis.py) holds the schema to them.
"""

from __future__ import annotations

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "parameter → what is wrong with it",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
COMMON = {
    "401": ("Not authenticated: no or a bad token or session", "Detail"),
    "403": ("Authenticated, but not staff (or, for a change of configuration, not a superuser)", "Detail"),
    "429": ("Over the rate limit; Retry-After says when to come back", "Detail"),
}


def _answer(description: str, component: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
    }


def add_common_answers(result, generator, request, public):
    """drf-spectacular postprocessing hook (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Detail", DETAIL)
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, (description, component) in COMMON.items():
                responses.setdefault(status, _answer(description, component))
            queries = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            if "page" in queries:
                responses.setdefault("404", _answer("A page past the last one", "Detail"))
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    responses.setdefault("404", _answer("No such row", "Detail"))
                    if parameter.get("schema", {}).get("type") == "integer":
                        # Django's <int:…> matches digits only: a negative id is no URL of ours.
                        parameter["schema"].setdefault("minimum", 0)
            if queries - {"page", "page_size"}:
                responses.setdefault("400", _answer("A filter value that is refused", "FieldErrors"))
    return result
