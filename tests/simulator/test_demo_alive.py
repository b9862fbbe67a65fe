"""A demo left running keeps every entity alive: nothing runs down to zero, every entity changes."""

from __future__ import annotations

import random

from sync.entities import ENTITIES
from zohosim import ZohoSimulator
from zohosim.demo import PULLED_ONLY, demo_tick, seed_demo

from .conftest import target


def test_a_long_demo_changes_every_entity_and_none_runs_out():
    sim = ZohoSimulator()
    seed_demo(sim)
    changed = set()
    rng = random.Random(7)
    for _ in range(400):
        changed |= {change.slug for change in demo_tick(sim, rng, changes=3)}
    assert changed == set(ENTITIES)
    assert all(sim.all(slug) for slug in ENTITIES)


def test_credit_notes_are_created_as_well_as_deleted():
    sim = ZohoSimulator()
    seed_demo(sim)
    actions = set()
    rng = random.Random(11)
    for _ in range(300):
        actions |= {c.action for c in demo_tick(sim, rng, changes=3) if c.slug == "credit-notes"}
    assert actions == {"created", "deleted"}


def test_price_lists_and_users_change_without_a_webhook(receiver):
    sim = ZohoSimulator(webhook_target=target(receiver), webhook_token="tok")
    seed_demo(sim)
    rng = random.Random(5)
    pulled_only = [c for _ in range(100) for c in demo_tick(sim, rng, changes=3) if c.slug in PULLED_ONLY]
    assert {c.slug for c in pulled_only} == PULLED_ONLY
    assert all(c.delivered is None for c in pulled_only)
