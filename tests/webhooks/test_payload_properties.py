"""Properties of what every stage agrees on about a payload, fuzzed: its content hash, its version and
the object a webhook body comes to.

- The hash is of the content, not of its spelling: key order and whitespace never change it, and any
  change of a value (however deep) or of a key does.
- A version is an instant: the same instant written with different UTC offsets is one version, and
  instants keep their order whatever offsets they are written with — in the parser and through the
  door, the queue and the ERP row on either database.
- Each body form a sender uses (JSON, the object under its entity's single key, a form whose one
  field holds the JSON, flat form pairs) comes out as the very object that went in.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from erp.models import Product
from sync import entities, payloads, webhook_auth
from sync.models import QueueItem
from sync.webhooks import parse
from tests.webhooks.conftest import deliver

# Text as a sender writes it: any character UTF-8 and PostgreSQL hold (no lone surrogate, no NUL).
text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=16,
)
json_objects = st.dictionaries(text, json_values, max_size=6)

FAST = settings(max_examples=100, deadline=None)


def reordered(value, rng):
    """`value` with every object's keys in another order (lists keep theirs: order is content there)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {key: reordered(value[key], rng) for key in keys}
    if isinstance(value, list):
        return [reordered(item, rng) for item in value]
    return value


def paths(value, prefix=()):
    """Every place in `value` a value sits: (path, value)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,), item
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield prefix + (index,), item
            yield from paths(item, prefix + (index,))


def replaced(value, path, new):
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {key: replaced(item, rest, new) if key == head else item for key, item in value.items()}
    return [replaced(item, rest, new) if index == head else item for index, item in enumerate(value)]


# -- the content hash ---------------------------------------------------------------------------


@FAST
@given(obj=json_objects, rng=st.randoms(use_true_random=False))
def test_key_order_never_changes_the_hash(obj, rng):
    shuffled = reordered(obj, rng)
    assert payloads.content_hash(shuffled) == payloads.content_hash(obj)


@FAST
@given(
    obj=json_objects,
    indent=st.sampled_from([None, 0, 1, 2, 4, "\t"]),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : "), (",\n", ":\t")]),
    ascii_only=st.booleans(),
    media_type=st.sampled_from(["application/json", "text/plain", "", webhook_auth.FORM_TYPE]),
)
def test_whitespace_and_escapes_in_the_body_never_change_the_hash(obj, indent, separators, ascii_only, media_type):
    body = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=ascii_only)
    body = "\n " + body + " \r\n"
    assert payloads.content_hash(parse(body.encode(), media_type)) == payloads.content_hash(obj)


@pytest.mark.django_db
def test_the_same_content_resent_with_other_whitespace_is_one_delivery(client, webhook_secrets):
    # Through the door: the stored hash is the content's, so a sender's re-formatting is a duplicate.
    sent = {"count": 0}

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(obj=json_objects, indent=st.sampled_from([1, 2, "\t"]), ascii_only=st.booleans())
    def send(obj, indent, ascii_only):
        sent["count"] += 1
        obj = {**obj, "item_id": f"spaced-{sent['count']}"}
        first = deliver(client, "products", json.dumps(obj, separators=(",", ":")).encode())
        again = deliver(client, "products", json.dumps(obj, indent=indent, ensure_ascii=ascii_only).encode())
        assert first.status_code == 202, first.content
        assert (again.status_code, again.json()["event_id"]) == (200, first.json()["event_id"]), (
            f"example {sent['count']}: the compact body was event {first.json()['event_id']}, "
            f"the indented one answered {again.status_code} {again.content[:200]!r}"
        )
        item = QueueItem.objects.get(object_id=obj["item_id"])
        assert item.content_hash == payloads.content_hash(obj)

    send()


@FAST
@given(obj=json_objects.filter(bool), data=st.data())
def test_any_change_of_a_value_or_a_key_changes_the_hash(obj, data):
    places = list(paths(obj))
    path, old = data.draw(st.sampled_from(places), label="place")
    new = data.draw(json_values, label="new value")
    assume(payloads.canonical_json(new) != payloads.canonical_json(old))
    assert payloads.content_hash(replaced(obj, path, new)) != payloads.content_hash(obj), (path, old, new)
    # A key renamed, with its value unchanged, is another object too.
    key = data.draw(st.sampled_from(list(obj)), label="key")
    other = data.draw(text.filter(lambda name: name not in obj), label="new key")
    renamed = {other if name == key else name: item for name, item in obj.items()}
    assert payloads.content_hash(renamed) != payloads.content_hash(obj), (key, other)


# -- versions across UTC offsets ----------------------------------------------------------------

# Real offsets run from -12:00 to +14:00 in quarter hours; the parser takes any to ±23:59.
offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda quarters: timedelta(minutes=15 * quarters))
instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=UTC)
)
past_instants = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2025, 1, 1)).map(
    lambda moment: moment.replace(microsecond=0, tzinfo=UTC)
)


def written(instant: datetime, offset: timedelta, style: str) -> str:
    """`instant` as Zoho writes it at `offset`: `-0400` (its own style), `-04:00`, or `Z` at UTC."""
    local = instant.astimezone(timezone(offset))
    if style == "Z" and not offset:
        return local.strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S%z")
    return stamp if style == "zoho" else stamp[:-2] + ":" + stamp[-2:]


styles = st.sampled_from(["zoho", "iso", "Z"])


@FAST
@given(instant=instants, first=offsets, second=offsets, style_a=styles, style_b=styles)
def test_the_same_instant_with_any_offsets_is_one_version(instant, first, second, style_a, style_b):
    a = payloads.version_of({"last_modified_time": written(instant, first, style_a)})
    b = payloads.version_of({"last_modified_time": written(instant, second, style_b)})
    assert a == b == instant


@FAST
@given(
    earlier=instants,
    gap=st.one_of(st.integers(1, 2 * 86400), st.integers(1, 100 * 365 * 86400)).map(lambda s: timedelta(seconds=s)),
    first=offsets,
    second=offsets,
    style=styles,
)
def test_versions_keep_the_order_of_their_instants_whatever_the_offsets(earlier, gap, first, second, style):
    # Gaps up to two days mostly: where offsets (up to 26 h apart) could turn the written order around.
    later = earlier + gap
    a = payloads.parse_zoho_time(written(earlier, first, style))
    b = payloads.parse_zoho_time(written(later, second, style))
    assert a < b, (written(earlier, first, style), written(later, second, style))


@pytest.mark.django_db
def test_the_newest_instant_is_stored_whatever_the_offsets_and_order_of_arrival(client, webhook_secrets):
    # Through the door, the queue, the drain and the ERP row: on SQLite a version is text, and an
    # offset compared as text would put 10:00+05:30 after 09:00+00:00.
    sent = {"count": 0}

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        # Versions in the past: one far ahead of its arrival is refused, not stored (max_version_skew_minutes).
        moments=st.lists(past_instants, min_size=2, max_size=4, unique=True),
        chosen=st.lists(offsets, min_size=4, max_size=4),
        style=styles,
    )
    def send(moments, chosen, style):
        sent["count"] += 1
        item_id = f"offsets-{sent['count']}"
        for index, moment in enumerate(moments):  # in the drawn order: newest anywhere
            body = {"item_id": item_id, "name": f"at {moment.isoformat()}", "last_modified_time": ""}
            body["last_modified_time"] = written(moment, chosen[index], style)
            assert deliver(client, "products", body).status_code == 202
        call_command("process_queue", "--once")
        stored = Product.objects.get(zoho_id=item_id)
        newest = max(moments)
        assert (stored.zoho_last_modified, stored.name) == (newest, f"at {newest.isoformat()}"), (
            f"sent {len(moments)} versions of {item_id}: "
            + ", ".join(written(m, chosen[i], style) for i, m in enumerate(moments))
        )

    send()


# -- the body forms a sender uses ---------------------------------------------------------------


@FAST
@given(obj=json_objects, media_type=st.sampled_from(["application/json", "text/plain", "", webhook_auth.FORM_TYPE]))
def test_a_json_body_comes_out_as_the_object_sent(obj, media_type):
    assert parse(json.dumps(obj).encode(), media_type) == obj


@FAST
@given(
    obj=json_objects,
    slug=st.sampled_from([slug for slug, entity in entities.ENTITIES.items() if entity.kind != entities.Kind.STOCK]),
    code=st.booleans(),
)
def test_an_object_under_its_single_key_comes_out_as_the_object(obj, slug, code):
    key = entities.get(slug).single_key
    envelope = {"code": 0, "message": "success", key: obj} if code else {key: obj}
    located = entities.locate(slug, parse(json.dumps(envelope).encode(), "application/json"))
    assert located.obj == obj


@FAST
@given(obj=json_objects, field=st.sampled_from(["JSONString", "payload", "data"]))
def test_a_form_whose_one_field_holds_the_json_comes_out_as_the_object(obj, field):
    body = urlencode({field: json.dumps(obj, ensure_ascii=False)}).encode()
    assert parse(body, webhook_auth.FORM_TYPE) == obj


flat_forms = st.dictionaries(text.filter(bool), text, min_size=1, max_size=6)


@FAST
@given(pairs=flat_forms)
def test_flat_form_pairs_come_out_as_the_same_pairs(pairs):
    if len(pairs) == 1:
        # One field holding a JSON object is the form above, by design.
        assume(not isinstance(_json_or_none(next(iter(pairs.values()))), dict))
    assert parse(urlencode(pairs).encode(), webhook_auth.FORM_TYPE) == pairs


def _json_or_none(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return None
