"""Typed parsers for environment variables.

Every setting Steward reads from the environment goes through one of these functions, so a
malformed value stops start-up with a message naming the variable instead of surfacing later
as a confusing error (or, worse, as a silently wrong setting).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvError(ImproperlyConfigured):
    """A variable is set to something we cannot use."""

    def __init__(self, name: str, problem: str):
        self.variable = name
        super().__init__(f"Environment variable {name}: {problem}")


class Env:
    """Reads typed values from a mapping (os.environ by default, a dict in tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def is_set(self, name: str) -> bool:
        return self.raw(name) is not None

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def bool(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise EnvError(name, f"expected one of true/false, 1/0, yes/no, on/off; got {value!r}")

    def int(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise EnvError(name, f"expected a whole number; got {value!r}") from None
        if minimum is not None and number < minimum:
            raise EnvError(name, f"must be at least {minimum}; got {number}")
        if maximum is not None and number > maximum:
            raise EnvError(name, f"must be at most {maximum}; got {number}")
        return number

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default or [])
        items = [item.strip() for item in value.split(",")]
        if any(item == "" for item in items):
            raise EnvError(name, f"empty item in comma-separated list {value!r}")
        return items

    def path(self, name: str, default: Path | None = None) -> Path | None:
        value = self.raw(name)
        if value is None:
            return default
        return Path(value).expanduser()

    def database(self, name: str, default: str) -> dict:
        value = self.raw(name) or default
        try:
            return parse_database_url(value)
        except ValueError as exc:
            raise EnvError(name, str(exc)) from None

    def broker_url(self, name: str, default: str) -> str:
        value = self.raw(name) or default
        scheme = urlsplit(value).scheme
        if scheme not in {"redis", "rediss", "filesystem", "amqp", "amqps", "sqla+sqlite"}:
            raise EnvError(
                name,
                f"unsupported broker scheme {scheme!r}; use redis://host:port/db "
                "(or filesystem:// for the embedded default)",
            )
        return value


_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql"}


def _postgres_options(options: dict, url: str) -> dict:
    """Options of the query string as Django's PostgreSQL backend wants them: libpq's stay
    text; psycopg's `prepare_threshold` is a number or none (as text it broke every prepared
    statement: '>=' between int and str), `server_side_binding` a boolean."""
    if "prepare_threshold" in options:
        value = options["prepare_threshold"].strip().lower()
        if value in ("", "none", "null"):
            options["prepare_threshold"] = None
        elif value.isdigit():
            options["prepare_threshold"] = int(value)
        else:
            raise ValueError(
                f"prepare_threshold must be a whole number or none in {_redact(url)!r}"
            )
    if "server_side_binding" in options:
        value = options["server_side_binding"].strip().lower()
        if value not in _TRUE | _FALSE:
            raise ValueError(f"server_side_binding must be true or false in {_redact(url)!r}")
        options["server_side_binding"] = value in _TRUE
    return options


def parse_database_url(url: str) -> dict:
    """Turn a DATABASE_URL into a Django DATABASES entry.

    Supported: ``postgres://user:password@host:port/name?option=value`` and
    ``sqlite:///absolute/path.sqlite3`` (``sqlite:///relative.sqlite3`` is relative to the
    working directory).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        name = unquote(parts.path.lstrip("/"))
        if not name:
            raise ValueError(f"no database name in {_redact(url)!r} (expected .../dbname)")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"port is not a number in {_redact(url)!r}") from None
        options = _postgres_options(dict(parse_qsl(parts.query)), url)
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:
            raise ValueError("sqlite URLs take no host: use sqlite:///path/to/file.sqlite3")
        if path in {"", "/"}:
            raise ValueError("no file in sqlite URL (expected sqlite:///path/to/file.sqlite3)")
        # As in SQLAlchemy: sqlite:///rel.db is relative, sqlite:////abs/file.db absolute.
        name = path[1:]
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {
                # The web server, the worker and beat write to the same file: wait for the
                # lock instead of failing, and take it at BEGIN so upgrades cannot deadlock.
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    raise ValueError(
        f"unsupported database scheme {scheme!r}; use postgres://user@host:port/name "
        "or sqlite:///path"
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
