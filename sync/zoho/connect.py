"""Onboarding: a Zoho self-client grant code becomes a stored, encrypted refresh token.

Zoho's self-client flow (https://www.zoho.com/accounts/protocol/oauth/self-client/authorization-code-flow.html):
the API console of the organisation's data centre generates a code for chosen scopes, valid 3–10
minutes and once; `POST {accounts}/oauth/v2/token` with `grant_type=authorization_code` answers
the refresh token, an access token and the `api_domain` to call. The token row stored here is the
one ZohoClient then uses whenever ZOHO_REFRESH_TOKEN is unset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction

from sync.zoho import breaker
from sync.zoho.client import ZohoClient, account_key, configured_hosts
from sync.zoho.errors import CODE_NOT_AUTHORISED, ErrorKind, ZohoError
from sync.zoho.models import ZohoToken
from tdscore import actions
from tdscore.actions import Actor
from tdscore.enums import Action

# What TDS Core reads, and nothing more (docs/ZOHO_SETUP.md explains each).
SCOPES = (
    "ZohoBooks.contacts.READ",
    "ZohoBooks.invoices.READ",
    "ZohoBooks.bills.READ",
    "ZohoBooks.creditnotes.READ",
    "ZohoBooks.salesorders.READ",
    "ZohoBooks.customerpayments.READ",
    "ZohoBooks.settings.READ",
    "ZohoInventory.items.READ",
    "ZohoInventory.inventoryadjustments.READ",
    "ZohoInventory.settings.READ",
)


class ConnectError(Exception):
    """The grant code could not become a working connection; the message says what to do."""


@dataclass(frozen=True)
class Connection:
    api_domain: str
    scope: str
    organizations: list[dict[str, Any]]


def connect(code: str, *, now: datetime, actor: Actor, http: httpx.Client | None = None) -> Connection:
    """Exchange `code`, store the tokens encrypted, and list the organisations they reach."""
    if not (settings.ZOHO_CLIENT_ID and settings.ZOHO_CLIENT_SECRET):
        raise ConnectError("set ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET (the self client's) first")
    _, accounts = configured_hosts()
    body = _exchange(code.strip(), accounts, http)
    refresh = body.get("refresh_token")
    if not refresh:
        raise ConnectError(f"{accounts} answered without a refresh token: generate the code for a self client")
    row_key = account_key(accounts, settings.ZOHO_CLIENT_ID, settings.ZOHO_CLIENT_SECRET, refresh)
    with transaction.atomic():
        ZohoToken.objects.exclude(account=row_key).exclude(connected_at=None).update(
            connected_at=None, refresh_token=""
        )
        token, _ = ZohoToken.objects.update_or_create(
            account=row_key,
            defaults={
                "access_token": body["access_token"],
                "api_domain": str(body.get("api_domain") or ""),
                "expires_at": now + timedelta(seconds=int(body.get("expires_in") or 3600)),
                "refreshed_at": now,
                "refresh_token": refresh,
                "connected_at": now,
                "scope": str(body.get("scope") or ""),
                "last_error": "",
            },
        )
        # The account, never the token: the action log is read by every operator.
        after = {"accounts": accounts, "api_domain": token.api_domain, "scope": token.scope}
        actions.record(actor, Action.ZOHO_CONNECT, f"Zoho account at {accounts}", after=after, at=now, obj=token)
    # New credentials: an auth state the old ones left says nothing about them.
    breaker.clear_auth(now)
    return Connection(str(body.get("api_domain") or ""), str(body.get("scope") or ""), _organizations(refresh))


def _exchange(code: str, accounts: str, http: httpx.Client | None) -> dict[str, Any]:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": settings.ZOHO_CLIENT_ID,
        "client_secret": settings.ZOHO_CLIENT_SECRET,
    }
    client = http or httpx.Client(timeout=30)
    try:
        response = client.post(f"{accounts}/oauth/v2/token", data=data)
    except httpx.TransportError as exc:
        raise ConnectError(f"cannot reach {accounts}: {exc}") from exc
    finally:
        if http is None:
            client.close()
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ConnectError(f"{accounts} answered HTTP {response.status_code}: {response.text[:200]!r}")
    error = body.get("error")
    if error == "invalid_code":
        raise ConnectError(
            "the code is used or expired (a code works once, for the 3–10 minutes chosen when it was "
            f"generated), or it belongs to another data centre than {accounts} (ZOHO_DC={settings.ZOHO_DC}): "
            "generate a new one in the API console of your data centre and run zoho_connect at once"
        )
    if error == "invalid_client":
        raise ConnectError(
            f"{accounts} does not know this client id and secret: is ZOHO_DC={settings.ZOHO_DC} the data "
            "centre the self client was created in (the API console's host: api-console.zoho.<dc>)?"
        )
    if error or not body.get("access_token"):
        raise ConnectError(f"{accounts} refused the code: {error or body!r}")
    return body


def _organizations(refresh_token: str) -> list[dict[str, Any]]:
    try:
        with ZohoClient(refresh_token=refresh_token) as client:
            return client.organizations()
    except ZohoError as exc:
        if exc.code == CODE_NOT_AUTHORISED or exc.kind in (ErrorKind.AUTH, ErrorKind.SCOPE):
            raise ConnectError(
                "the token was stored but cannot list organisations: a scope is missing. Generate a new "
                f"code with these scopes: {','.join(SCOPES)}"
            ) from exc
        raise ConnectError(f"the token was stored but listing organisations failed: {exc}") from exc
