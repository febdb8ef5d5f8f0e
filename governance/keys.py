"""Steward's own keys: the encryption key (secrets, subject keys) and the signing key.

Production sets STEWARD_ENCRYPTION_KEY (one or more Fernet keys, comma-separated, the first
encrypts) and STEWARD_SIGNING_KEY (path of an Ed25519 private key in PEM). With DEBUG on and
nothing set, local keys are generated once under STEWARD_VAR_DIR, so `make run` works on a
fresh machine; start-up refuses to run without them when DEBUG is off.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _create_once(path: Path, make: callable) -> bytes:
    """Write a new key file atomically unless one exists; return the file's contents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        data = make()
        handle.write(data)
    return data


@cache
def fernet() -> MultiFernet:
    raw = settings.STEWARD_ENCRYPTION_KEY
    if raw:
        keys = [k.strip() for k in raw.split(",") if k.strip()]
    else:
        path = Path(settings.VAR_DIR) / "encryption.key"
        keys = [_create_once(path, Fernet.generate_key).decode().strip()]
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "Environment variable STEWARD_ENCRYPTION_KEY: each key must be 32 url-safe "
            "base64-encoded bytes (generate one with: python -c 'from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())')"
        ) from None


def _new_signing_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def signing_key_path() -> Path:
    if settings.STEWARD_SIGNING_KEY:
        return Path(settings.STEWARD_SIGNING_KEY)
    return Path(settings.VAR_DIR) / "signing-key.pem"


@cache
def signing_key() -> Ed25519PrivateKey:
    path = signing_key_path()
    if settings.STEWARD_SIGNING_KEY:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"Environment variable STEWARD_SIGNING_KEY: cannot read {path}: {exc.strerror}"
            ) from None
    else:
        pem = _create_once(path, _new_signing_key_pem)
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"Environment variable STEWARD_SIGNING_KEY: {path} is not an unencrypted PEM "
            "private key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(
            f"Environment variable STEWARD_SIGNING_KEY: {path} holds a "
            f"{type(key).__name__}, not an Ed25519 key"
        )
    return key


def public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def public_key_pem() -> bytes:
    return public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey | None = None) -> str:
    """SHA-256 of the raw 32-byte public key, hex: names the key in checkpoints and bundles."""
    raw = (key or public_key()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()


def reset_caches() -> None:
    """Forget loaded keys (tests that change the key settings call this)."""
    fernet.cache_clear()
    signing_key.cache_clear()
