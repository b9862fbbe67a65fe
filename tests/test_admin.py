"""The admin is the operations console: every page of every registered model loads, with a row to show."""

from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.urls import reverse
from django.utils import timezone

from erp.models import Invoice, Product
from sync import queue
from sync.config_keys import BATCH_SIZE, RECONCILIATION_ENABLED
from sync.models import AuditTrail, DeadLetter, InboxEvent, QueueItem
from tdscore import config
from tdscore.admin import money
from tdscore.models import Configuration
from tests import factories

pytestmark = pytest.mark.django_db

REGISTERED = sorted(admin.site._registry, key=lambda model: model._meta.label)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def superuser(django_user_model):
    # No password to hash (half a second each): the client logs in with force_login.
    return django_user_model.objects.create_superuser("root", "root@example.com", None)


@pytest.fixture
def operator(client, superuser):
    client.force_login(superuser)
    return client


def build_row(model):
    build = factories.ADMIN_ROWS.get(model)
    assert build, f"no builder for {model._meta.label}: add one to tests/factories.py with @builds({model.__name__})"
    return build()


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_and_change_page_load_with_a_row(operator, model):
    row = build_row(model)

    changelist = operator.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count >= 1
    change = operator.get(admin_url(model, "change", quote(row.pk)))
    assert change.status_code == 200


@pytest.mark.parametrize("model", REGISTERED, ids=lambda model: model._meta.label)
def test_changelist_search_answers(operator, model):
    build_row(model)
    model_admin = admin.site._registry[model]
    params = {"q": "1"} if model_admin.search_fields else {}
    assert operator.get(admin_url(model, "changelist"), params).status_code == 200


def test_inbox_rows_cannot_be_edited_or_deleted(operator):
    row = factories.inbox_event()
    page = operator.get(admin_url(InboxEvent, "change", row.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert operator.post(admin_url(InboxEvent, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert InboxEvent.objects.filter(pk=row.pk).exists()


def test_non_staff_users_are_sent_to_the_login(client, django_user_model):
    client.force_login(factories.user("clerk"))
    response = client.get(admin_url(Configuration, "changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def edit_configuration(client, key: str, value: str):
    row = Configuration.objects.get(key=key)
    return client.post(admin_url(Configuration, "change", row.pk), {"value": value})


def test_a_bad_configuration_value_shows_the_error_and_changes_nothing(operator):
    response = edit_configuration(operator, "batch_size", "0")
    assert response.status_code == 200
    assert "batch_size: 0 is below the minimum 1" in response.content.decode()
    assert config.get(BATCH_SIZE) == 100


def test_a_configuration_value_of_the_wrong_type_is_refused(operator):
    response = edit_configuration(operator, "reconciliation_enabled", '"sometimes"')
    assert "expected true or false" in response.content.decode()
    assert config.get(RECONCILIATION_ENABLED) is True


def test_a_good_configuration_value_is_saved_and_seen_at_once(operator, superuser):
    config.get(BATCH_SIZE)  # a warm cache must not hide the change
    response = edit_configuration(operator, "batch_size", "25")
    assert response.status_code == 302
    assert config.get(BATCH_SIZE) == 25
    assert Configuration.objects.get(key="batch_size").updated_by == superuser


def test_the_console_is_branded_and_lists_the_sync_tables(operator):
    page = operator.get(reverse("admin:index")).content.decode()
    assert "TDS Core operations console" in page
    assert "Inbox events" in page


# --- Queue rows and dead letters move only through their actions ------------


def changelist_action(client, model, action: str, rows) -> str:
    # `post`: confirmed, as the replay's confirmation page posts back (other actions ignore it).
    data = {"action": action, "_selected_action": [str(r.pk) for r in rows], "post": "yes"}
    response = client.post(admin_url(model, "changelist"), data, follow=True)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("model", [QueueItem, DeadLetter], ids=lambda model: model.__name__)
def test_queue_rows_and_dead_letters_have_no_edit_form_and_cannot_be_deleted(operator, model):
    row = build_row(model)
    before = model.objects.values().get(pk=row.pk)

    page = operator.get(admin_url(model, "change", row.pk))
    assert b'name="_save"' not in page.content and b"<textarea" not in page.content
    assert operator.post(admin_url(model, "change", row.pk), {"status": "completed"}).status_code == 403
    assert operator.post(admin_url(model, "delete", row.pk), {"post": "yes"}).status_code == 403
    assert model.objects.values().get(pk=row.pk) == before


@pytest.mark.parametrize("model", [QueueItem, DeadLetter], ids=lambda model: model.__name__)
def test_delete_selected_is_not_offered_for_queue_rows_or_dead_letters(operator, model):
    row = build_row(model)
    changelist = operator.get(admin_url(model, "changelist"))
    assert "delete_selected" not in changelist.context["action_form"].fields["action"].choices.__repr__()
    operator.post(admin_url(model, "changelist"), {"action": "delete_selected", "_selected_action": [row.pk]})
    assert model.objects.filter(pk=row.pk).exists()


def test_a_processing_row_cannot_be_changed_by_posting_its_form(operator):
    factories.queue_item()
    batch = queue.claim_batch(worker_id="host:1", now=timezone.now())
    item = batch.items[0]
    response = operator.post(admin_url(QueueItem, "change", item.pk), {"status": "pending", "locked_by": ""})
    assert response.status_code == 403
    item.refresh_from_db()
    assert (item.status, item.locked_by) == (QueueItem.Status.PROCESSING, "host:1")


def test_requeue_replays_the_open_dead_letter_of_a_dead_lettered_row(operator):
    dead = factories.dead_letter(queue_item=dead_lettered_row())
    page = changelist_action(operator, QueueItem, "requeue_selected", [dead.queue_item])
    assert "1 dead letter(s) requeued" in page
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by) == ("replayed", "root")
    assert QueueItem.objects.get(pk=dead.queue_item_id).status == QueueItem.Status.PENDING


def test_requeue_refuses_a_row_that_is_not_dead_lettered(operator):
    factories.queue_item()
    item = queue.claim_batch(worker_id="host:1", now=timezone.now()).items[0]
    page = changelist_action(operator, QueueItem, "requeue_selected", [item])
    assert f"Queue row #{item.pk} is processing with no open dead letter" in page
    item.refresh_from_db()
    assert item.status == QueueItem.Status.PROCESSING


def dead_lettered_row(object_id: str = "1001") -> QueueItem:
    item = factories.queue_item(object_id=object_id)
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.DEAD_LETTER, last_error="Zoho answered 500")
    item.refresh_from_db()
    return item


@pytest.mark.parametrize(
    ("action", "resolution"),
    [("replay_selected", "replayed"), ("discard_selected", "discarded"), ("mark_fixed_selected", "fixed")],
)
def test_each_dead_letter_action_resolves_through_the_changelist(operator, action, resolution):
    dead = factories.dead_letter(queue_item=dead_lettered_row())
    changelist_action(operator, DeadLetter, action, [dead])
    dead.refresh_from_db()
    assert (dead.resolution, dead.resolved_by) == (resolution, "root")
    assert dead.resolved_at is not None


def test_dead_letters_filter_open_from_resolved(operator):
    open_one, done = factories.dead_letter(), factories.dead_letter()
    queue.discard(done, actor=factories.actor("ops"))
    listed = operator.get(admin_url(DeadLetter, "changelist"), {"resolved": "no"}).context["cl"].result_list
    assert [row.pk for row in listed] == [open_one.pk]


def test_queue_rows_filter_by_having_an_error(operator):
    failed, fine = dead_lettered_row("1"), factories.queue_item(object_id="2")
    listed = operator.get(admin_url(QueueItem, "changelist"), {"has_error": "yes"}).context["cl"].result_list
    assert [row.pk for row in listed] == [failed.pk]
    assert fine.pk not in [row.pk for row in listed]


# --- Readable pages ------------------------------------------------------------------------------------


def test_a_dead_letter_shows_its_payload_as_wrapped_indented_json(operator):
    dead = factories.dead_letter(payload={"item_id": "1001", "description": "x" * 400})
    page = operator.get(admin_url(DeadLetter, "change", dead.pk)).content.decode()
    assert '<pre class="tds-pre" style="white-space:pre-wrap">{\n  &quot;item_id&quot;: &quot;1001&quot;,' in page
    assert "x" * 400 in page


def test_a_webhook_body_is_shown_as_indented_json(operator):
    row = factories.inbox_event(raw_body=b'{"item_id":"1001","rate":552.6}')
    page = operator.get(admin_url(InboxEvent, "change", row.pk)).content.decode()
    assert "{\n  &quot;item_id&quot;: &quot;1001&quot;,\n  &quot;rate&quot;: 552.6\n}" in page


def test_rates_are_shown_as_money(operator):
    product = factories.erp_row(Product, rate=Decimal("552.600000"), purchase_rate=Decimal("1234.5"))
    changelist = operator.get(admin_url(Product, "changelist")).content.decode()
    change = operator.get(admin_url(Product, "change", product.pk)).content.decode()
    for page in (changelist, change):
        assert "552.60" in page and "552.600000" not in page
    assert "1,234.50" in change


def test_invoice_lines_show_amounts_as_money(operator):
    invoice = factories.erp_row(Invoice)
    page = operator.get(admin_url(Invoice, "change", invoice.pk)).content.decode()
    quantity = page[page.index('<td class="field-quantity_shown">') :]
    assert quantity[: quantity.index("</td>")].split("<p>")[1].startswith("1.00</p>")


def test_money_keeps_significant_places():
    assert money(Decimal("0.125000")) == "0.125"
    assert money(Decimal("1000000")) == "1,000,000.00"
    assert money(None) == "—"


def test_an_event_links_to_its_queue_row_dead_letter_and_audit_rows(operator):
    event = factories.inbox_event()
    item = factories.queue_item(inbox_event=event)
    dead = factories.dead_letter(queue_item=item)
    audit = factories.audit_row(queue_item_id=item.pk, inbox_event_id=event.pk)

    event_page = operator.get(admin_url(InboxEvent, "change", event.pk)).content.decode()
    for row in (item, dead, audit):
        assert admin_url(type(row), "change", row.pk) in event_page
    dead_page = operator.get(admin_url(DeadLetter, "change", dead.pk)).content.decode()
    for row in (item, event, audit):
        assert admin_url(type(row), "change", row.pk) in dead_page
    audit_page = operator.get(admin_url(AuditTrail, "change", audit.pk)).content.decode()
    for row in (item, event):
        assert admin_url(type(row), "change", row.pk) in audit_page


def test_the_audit_list_linked_from_a_queue_row_holds_only_its_rows(operator):
    item = factories.queue_item()
    mine, other = factories.audit_row(queue_item_id=item.pk), factories.audit_row(queue_item_id=item.pk + 1)
    listed = operator.get(admin_url(AuditTrail, "changelist"), {"queue_item_id": item.pk}).context["cl"].result_list
    assert [row.pk for row in listed] == [mine.pk]
    assert other.pk not in [row.pk for row in listed]


def test_an_audit_row_shows_each_changed_field_before_and_after(operator):
    audit = factories.audit_row(
        operation=AuditTrail.Operation.UPDATE,
        before={"name": "Old name", "rate": 1},
        after={"name": "New name", "rate": 1},
        changed_fields=["name"],
    )
    page = operator.get(admin_url(AuditTrail, "change", audit.pk)).content.decode()
    diff = page[page.index('class="tds-diff"') :]
    assert diff.index("Old name") < diff.index("New name")
    assert "<th>rate</th>" not in diff[: diff.index("</table>")]


def test_an_audit_row_whose_queue_row_was_removed_says_so(operator):
    audit = factories.audit_row(queue_item_id=987654)
    page = operator.get(admin_url(AuditTrail, "change", audit.pk)).content.decode()
    assert "#987654 (removed by retention)" in page


def test_an_open_dead_letters_page_offers_its_actions_and_they_work(operator):
    dead = factories.dead_letter(queue_item=dead_lettered_row())
    page = operator.get(admin_url(DeadLetter, "change", dead.pk)).content.decode()
    form = page[page.index('class="tds-actions"') :]
    assert 'value="replay_selected"' in form and 'value="discard_selected"' in form
    assert f'name="_selected_action" value="{dead.pk}"' in form

    changelist_action(operator, DeadLetter, "replay_selected", [dead])

    dead.refresh_from_db()
    assert dead.resolution == "replayed"
    assert 'class="tds-actions"' not in operator.get(admin_url(DeadLetter, "change", dead.pk)).content.decode()


def test_a_dead_lettered_rows_page_offers_requeue(operator):
    item = dead_lettered_row()
    page = operator.get(admin_url(QueueItem, "change", item.pk)).content.decode()
    assert 'value="requeue_selected"' in page
    assert (
        'value="requeue_selected"'
        not in operator.get(admin_url(QueueItem, "change", factories.queue_item(object_id="2").pk)).content.decode()
    )


def test_the_zoho_token_page_never_shows_a_token(operator):
    from sync.zoho.models import ZohoToken

    row = factories.zoho_token(access_token="1000.access-secret", refresh_token="1000.refresh-secret")
    page = operator.get(admin_url(ZohoToken, "change", row.pk))
    assert page.status_code == 200
    assert b"access-secret" not in page.content and b"refresh-secret" not in page.content


@pytest.mark.parametrize("depth", [40, 1_000, 100_000])
def test_a_body_nested_past_any_depth_is_shown_indented_to_a_limit_with_the_raw_text_beside(operator, depth):
    body = '{"a":' * depth + '"deepest"' + "}" * depth
    row = factories.inbox_event(raw_body=body.encode())
    answer = operator.get(admin_url(InboxEvent, "change", row.pk))
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "as stored:" in page
    assert "{&quot;a&quot;:" * 30 in page  # the raw text
    assert "&quot;deepest&quot;" in page


def test_a_dead_letter_payload_nested_deeper_than_the_limit_is_shown(operator):
    payload = "leaf"
    for _ in range(200):
        payload = {"a": payload}
    dead = factories.dead_letter(payload=payload)
    page = operator.get(admin_url(DeadLetter, "change", dead.pk)).content.decode()
    assert "Nested deeper than 32 levels; as stored:" in page and "&quot;leaf&quot;" in page


def test_a_long_error_is_cut_in_the_lists_and_whole_on_hover(operator):
    reason = "Zoho answered 400 (code 1001): " + "the line item refers to a tax that no longer exists; " * 4 + "END"
    item = factories.queue_item()
    QueueItem.objects.filter(pk=item.pk).update(status=QueueItem.Status.RETRY, last_error=reason)
    factories.dead_letter(queue_item=item, error=reason)

    for model in (QueueItem, DeadLetter):
        html = operator.get(admin_url(model, "changelist")).content.decode()
        cell = html[html.index('class="field-error') :].split("</td>")[0]
        assert f'{reason}">' in cell, model  # whole in the title
        assert "END<" not in cell and "…" in cell, model  # cut in the cell
