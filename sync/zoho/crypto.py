"""Secrets kept in the database (OAuth tokens), encrypted with Fernet.

`cryptography`'s MultiFernet: the first key encrypts, every key decrypts, so a key rotates by
putting the new one first and running `zoho_connect` again (or waiting for the next refresh,
which re-encrypts the access token). Each configured value is used as a Fernet key when it is one
(`Fernet.generate_key()`), else as a passphrase hashed into one; with none set, the key derives
from SECRET_KEY, so a deployment that keeps its SECRET_KEY keeps its tokens readable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)
_DERIVATION = b"tds-core/encryption-key/v1\n"


def _fernet(value: str) -> Fernet:
    try:
        if len(base64.urlsafe_b64decode(value.encode())) == 32:
            return Fernet(value.encode())
    except (binascii.Error, ValueError):
        pass
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(_DERIVATION + value.encode()).digest()))


def keys() -> MultiFernet:
    configured = [k.strip() for k in settings.TDS_ENCRYPTION_KEY if k.strip()]
    return MultiFernet([_fernet(k) for k in configured or [settings.SECRET_KEY]])


def encrypt(plain: str) -> str:
    return keys().encrypt(plain.encode()).decode() if plain else ""


def decrypt(stored: str) -> str:
    """The plain text, or "" when no configured key opens it (a changed key: connect again)."""
    if not stored:
        return ""
    try:
        return keys().decrypt(stored.encode()).decode()
    except InvalidToken:
        logger.warning("a stored secret cannot be decrypted with TDS_ENCRYPTION_KEY (or SECRET_KEY); ignored")
        return ""


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; reads give the plain text ("" when the key cannot open it)."""

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value is not None else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value
