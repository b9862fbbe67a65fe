"""The published OpenAPI schema against the running API (schemathesis, bounded examples).

A live server on 127.0.0.1, a superuser's token (a superuser is staff, and may PATCH config too):
every operation of /api/schema/ gets generated requests; no answer may be a 5xx, and every answer
must match what the schema says of its status, content type and body.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis import checks

from tests import factories

from .conftest import dead_lettered

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_every_operation_answers_as_the_schema_says(live_server, superuser):
    auth = {"Authorization": f"Token {Token.objects.create(user=superuser).key}"}
    dead_lettered("products", "1")
    factories.queue_item("invoices", "2")
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def answers_as_documented(case):
            case.call_and_validate(base_url=live_server.url, headers=auth, checks=CHECKS)

        answers_as_documented()
