"""TDS Core's registry against the simulator's own table of Zoho's modules, entry by entry.

sync.entities is what TDS Core believes about Zoho; zohosim.modules (with zohosim.kinds, which
slug lives in which module) is what the simulated Zoho does, written from Zoho's documentation. A
wrong path, key, id field, API or modified-time fact on either side fails here, naming the slug and
the field, instead of being copied by the fake. So do TDS Core's beliefs about Zoho's call limits.
"""

from __future__ import annotations

from typing import Any

import pytest

from sync.entities import ENTITIES, Entity
from sync.zoho import limiter
from zohosim.kinds import KINDS, Kind
from zohosim.limits import PER_MINUTE, PLANS
from zohosim.modules import Filter, Sort


def _registry_facts(entity: Entity) -> dict[str, Any]:
    return {
        "api": entity.api,
        "path": entity.path,
        "list_key": entity.list_key,
        "single_key": entity.single_key,
        "id_field": entity.id_field,
        "contact_type": entity.contact_type,
        "modified_filter": entity.modified_filter,
        "modified_sort": entity.modified_sort,
        "snapshots_of": ENTITIES[entity.snapshots_of].path if entity.snapshots_of else "",
    }


def _simulator_facts(kind: Kind) -> dict[str, Any]:
    module = kind.module
    return {
        "api": module.api.value,
        "path": module.path,
        "list_key": module.list_key,
        "single_key": module.single_key,
        "id_field": module.id_field,
        "contact_type": kind.contact_type.value if kind.contact_type else "",
        "modified_filter": Filter.LAST_MODIFIED_TIME in module.filters,
        "modified_sort": module.modified_sort == Sort.HONOURED,
        "snapshots_of": kind.snapshot_of.path if kind.snapshot_of else "",
    }


def test_the_registry_and_the_simulator_know_the_same_slugs():
    assert set(ENTITIES) == set(KINDS), (
        f"only in the registry: {sorted(set(ENTITIES) - set(KINDS))}; "
        f"only in the simulator: {sorted(set(KINDS) - set(ENTITIES))}"
    )


@pytest.mark.parametrize("slug", sorted(ENTITIES.keys() & KINDS.keys()))
def test_each_registry_entry_says_what_the_simulated_zoho_does(slug):
    ours, zohos = _registry_facts(ENTITIES[slug]), _simulator_facts(KINDS[slug])
    differences = [
        f"{slug}.{field}: the registry (sync.entities) says {ours[field]!r}, "
        f"the simulator (zohosim, from Zoho's docs) says {zohos[field]!r}"
        for field in ours
        if ours[field] != zohos[field]
    ]
    assert not differences, "\n".join(differences)


def test_our_limiter_believes_zohos_limits_plan_by_plan():
    assert limiter.MINUTE_CAP == PER_MINUTE
    assert set(limiter.DAILY_CAPS) == set(PLANS)
    for name, plan in PLANS.items():
        ours = (limiter.DAILY_CAPS[name], limiter.CONCURRENCY_CAPS.get(name, limiter.PAID_CONCURRENCY_CAP))
        zohos = (plan.daily, plan.concurrency)
        assert ours == zohos, f"plan {name}: (daily, concurrency) is {ours} in sync.zoho.limiter, {zohos} in zohosim"
