"""Services for Connections: create, change, test, and the spec executors get.

A connection's secret is encrypted at rest with Steward's key (`governance.keys.fernet()`, a
MultiFernet: AES-128-CBC with HMAC-SHA256, key rotation by listing the new key first). It is
decrypted only into the `ConnectionSpec` handed to one outbound call, and it never appears in
a page, an API response or a ledger record: records say only whether a secret is set and
whether this write replaced it.

Every write is one transaction that checks the actor's permission (governance.permissions),
writes, appends its ledger record and checks again after writing (STYLE.md habits 3 and 4).
"""

from __future__ import annotations

from cryptography.fernet import InvalidToken
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q

from agents import outbound
from agents.kinds.base import ConnectionSpec
from agents.models import Connection
from governance import keys, ledger
from governance.models import Team
from governance.permissions import allows
from governance.roles import Role, has_role

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_URL = 500
MAX_SECRET = 4096
MAX_SHORT = 200
MIN_TIMEOUT, MAX_TIMEOUT = 1.0, 300.0

# What a record may say about a connection: every setting but the secret.
RECORDED = (
    "name",
    "team",
    "kind",
    "description",
    "base_url",
    "auth_method",
    "header_name",
    "username",
    "token_url",
    "model",
    "timeout_seconds",
    "allow_internal",
)
EDITABLE = tuple(f for f in RECORDED if f != "kind")
# The ledger refuses keys that look like credentials (governance.canonical), even for values
# that are not secret: records name these settings differently.
RECORD_NAMES = {"token_url": "oauth2_endpoint"}


class ConnectionFieldError(ValueError):
    """A setting is wrong; `field` names it so forms and the API show it in the right place."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# --- Secrets ----------------------------------------------------------------------------------


def encrypt_secret(secret: str) -> bytes:
    return keys.fernet().encrypt(secret.encode("utf-8"))


def decrypt_secret(connection: Connection) -> str:
    if not connection.encrypted_secret:
        return ""
    return keys.fernet().decrypt(bytes(connection.encrypted_secret)).decode("utf-8")


def spec_for(connection: Connection) -> ConnectionSpec:
    """What an executor needs, with the secret decrypted for this call only."""
    return ConnectionSpec(
        id=str(connection.pk),
        name=connection.name,
        kind=connection.kind,
        base_url=connection.base_url,
        auth_method=connection.auth_method,
        secret=decrypt_secret(connection),
        username=connection.username,
        header_name=connection.header_name,
        token_url=connection.token_url,
        model=connection.model,
        allow_internal=connection.allow_internal,
        timeout_seconds=connection.timeout_seconds,
    )


def usable(user, kind: str | None = None):
    """The connections `user` may put in an agent (the `use` action), optionally of one kind."""
    connections = Connection.objects.restrict(user, "use")
    return connections.filter(kind=kind) if kind else connections


def specs_for(user, ids) -> dict[str, ConnectionSpec]:
    """Specs of the connections among `ids` that `user` may use, keyed by id (as text)."""
    wanted = [int(i) for i in {str(i) for i in ids} if str(i).isdigit()]
    if not wanted:
        return {}
    return {str(c.pk): spec_for(c) for c in usable(user).filter(pk__in=wanted)}


# --- Validation -------------------------------------------------------------------------------


def _text(values: dict, field: str, limit: int, *, required: bool = False) -> str:
    value = values.get(field, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ConnectionFieldError(field, "must be text")
    value = value.strip()
    if required and not value:
        raise ConnectionFieldError(field, "required")
    if len(value) > limit:
        raise ConnectionFieldError(field, f"at most {limit} characters")
    if any(ord(ch) < 32 for ch in value) and field != "description":
        raise ConnectionFieldError(field, "must not contain line breaks or control characters")
    return value


def _url(values: dict, field: str, *, required: bool) -> str:
    url = _text(values, field, MAX_URL, required=required)
    if not url:
        return ""
    try:
        outbound.parse_target(url)
    except outbound.OutboundRefused as exc:
        raise ConnectionFieldError(field, str(exc).removeprefix("refused: ")) from None
    return url


def _clean(values: dict, *, kind: str) -> dict:
    """The settings checked and normalised (everything but team, secret and allow_internal)."""
    cleaned = {
        "name": _text(values, "name", MAX_NAME, required=True),
        "description": _text(values, "description", MAX_DESCRIPTION),
        "base_url": _url(values, "base_url", required=True),
        "header_name": _text(values, "header_name", 100),
        "username": _text(values, "username", MAX_SHORT),
        "token_url": _url(values, "token_url", required=False),
        "model": _text(values, "model", MAX_SHORT),
    }
    auth = values.get("auth_method") or Connection.Auth.NONE
    if auth not in Connection.Auth.values:
        raise ConnectionFieldError("auth_method", f"one of {', '.join(Connection.Auth.values)}")
    cleaned["auth_method"] = auth
    if auth == Connection.Auth.API_KEY_HEADER:
        if not outbound.HEADER_NAME.match(cleaned["header_name"]):
            raise ConnectionFieldError(
                "header_name", "the header that carries the key, e.g. X-API-Key"
            )
    else:
        cleaned["header_name"] = ""
    if auth == Connection.Auth.BASIC and not cleaned["username"]:
        raise ConnectionFieldError("username", "basic auth needs the user name")
    if auth == Connection.Auth.OAUTH2:
        if not cleaned["username"]:
            raise ConnectionFieldError("username", "OAuth2 needs the client id")
        if not cleaned["token_url"]:
            raise ConnectionFieldError("token_url", "OAuth2 needs the token endpoint")
    else:
        cleaned["token_url"] = ""
    if auth not in (Connection.Auth.BASIC, Connection.Auth.OAUTH2):
        cleaned["username"] = ""
    if kind != Connection.Kind.MODEL:
        cleaned["model"] = ""
    timeout = values.get("timeout_seconds", 30.0)
    if timeout in (None, ""):
        timeout = 30.0
    if isinstance(timeout, bool):
        raise ConnectionFieldError("timeout_seconds", "a number of seconds")
    try:
        timeout = float(timeout)
    except (TypeError, ValueError, OverflowError):
        raise ConnectionFieldError("timeout_seconds", "a number of seconds") from None
    if not MIN_TIMEOUT <= timeout <= MAX_TIMEOUT:
        raise ConnectionFieldError(
            "timeout_seconds", f"between {MIN_TIMEOUT:g} and {MAX_TIMEOUT:g} seconds"
        )
    cleaned["timeout_seconds"] = timeout
    return cleaned


def _secret(value) -> str | None:
    """None (keep what is stored) or the new secret."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConnectionFieldError("secret", "must be text")
    if len(value) > MAX_SECRET:
        raise ConnectionFieldError("secret", f"at most {MAX_SECRET} characters")
    if outbound.CONTROL_CHARS.search(value):
        raise ConnectionFieldError("secret", "must not contain line breaks or control characters")
    return value


def _unique_name(name: str, exclude: int | None = None) -> None:
    others = Connection.objects.filter(name__iexact=name)
    if exclude is not None:
        others = others.exclude(pk=exclude)
    if others.exists():
        raise ConnectionFieldError("name", f"a connection called {name!r} already exists")


def _may_create_for(actor, team: Team) -> bool:
    return has_role(actor, Role.ADMIN) or (
        has_role(actor, Role.BUILDER) and Team.objects.of_user(actor).filter(pk=team.pk).exists()
    )


def teams_for_new(actor):
    """The teams `actor` may create connections (and agents) for."""
    if has_role(actor, Role.ADMIN):
        return Team.objects.all()
    if has_role(actor, Role.BUILDER):
        return Team.objects.of_user(actor)
    return Team.objects.none()


def _snapshot(connection: Connection) -> dict:
    """The settings as a record shows them: never the secret, only whether one is stored."""
    data = {}
    for field in RECORDED:
        value = getattr(connection, field)
        data[RECORD_NAMES.get(field, field)] = value.name if isinstance(value, Team) else value
    data["auth_value_stored"] = connection.has_secret
    return data


def _body(connection: Connection) -> dict:
    return {"connection": {"id": str(connection.pk), "name": connection.name}}


# --- Writes -----------------------------------------------------------------------------------


@transaction.atomic
def create(*, actor, team, kind: str, secret: str | None = None, **values) -> Connection:
    """A new connection owned by `team`; `allow_internal` only by an admin."""
    if not isinstance(team, Team):
        raise ConnectionFieldError("team", "choose the owning team")
    if kind not in Connection.Kind.values:
        raise ConnectionFieldError("kind", f"one of {', '.join(Connection.Kind.values)}")
    if not _may_create_for(actor, team):
        raise PermissionDenied(f"you may not create connections for team {team}")
    allow_internal = bool(values.pop("allow_internal", False))
    if allow_internal and not has_role(actor, Role.ADMIN):
        raise PermissionDenied("only an admin may let a connection reach internal addresses")
    cleaned = _clean(values, kind=kind)
    new_secret = _secret(secret)
    if cleaned["auth_method"] != Connection.Auth.NONE and new_secret is None:
        raise ConnectionFieldError("secret", "this auth method needs its secret")
    _unique_name(cleaned["name"])
    connection = Connection.objects.create(
        team=team,
        kind=kind,
        allow_internal=allow_internal,
        created_by=actor,
        encrypted_secret=encrypt_secret(new_secret) if new_secret else None,
        **cleaned,
    )
    ledger.append(
        "connection.created",
        actor=actor,
        body={**_body(connection), "settings": _snapshot(connection)},
        team=team,
    )
    _require(actor, "change", connection)
    return connection


@transaction.atomic
def update(connection: Connection, *, actor, secret: str | None = None, **values) -> Connection:
    """Change settings; a blank or missing secret keeps the stored one.

    `values` holds the settings to change (others keep their value). A non-admin may not
    change `allow_internal`; switching the auth method to none removes the stored secret."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    _require(actor, "change", connection)
    before = _snapshot(connection)
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ConnectionFieldError(sorted(unknown)[0], "not a setting that can be changed")
    team = values.pop("team", connection.team)
    if not isinstance(team, Team):
        raise ConnectionFieldError("team", "choose the owning team")
    if team.pk != connection.team_id and not _may_create_for(actor, team):
        raise PermissionDenied(f"you may not move connections to team {team}")
    if "allow_internal" in values:
        wanted = bool(values.pop("allow_internal"))
        if wanted != connection.allow_internal and not has_role(actor, Role.ADMIN):
            raise PermissionDenied("only an admin may change whether it reaches internal addresses")
        connection.allow_internal = wanted
    merged = {f: getattr(connection, f) for f in EDITABLE if f not in ("team", "allow_internal")}
    merged.update(values)
    cleaned = _clean(merged, kind=connection.kind)
    new_secret = _secret(secret)
    if cleaned["name"].lower() != connection.name.lower():
        _unique_name(cleaned["name"], exclude=connection.pk)
    for field, value in cleaned.items():
        setattr(connection, field, value)
    connection.team = team
    credential_outcome = "kept"
    if cleaned["auth_method"] == Connection.Auth.NONE:
        if connection.encrypted_secret:
            credential_outcome = "removed"
        connection.encrypted_secret = None
    elif new_secret is not None:
        connection.encrypted_secret = encrypt_secret(new_secret)
        credential_outcome = "replaced"
    elif not connection.encrypted_secret:
        raise ConnectionFieldError("secret", "this auth method needs its secret")
    connection.save()
    after = _snapshot(connection)
    changed = sorted(k for k in after if before[k] != after[k] and k != "auth_value_stored")
    ledger.append(
        "connection.changed",
        actor=actor,
        body={
            **_body(connection),
            "changed": changed,
            "before": {k: before[k] for k in changed if k in before},
            "after": {k: after[k] for k in changed if k in after},
            "auth_value": credential_outcome,  # kept, replaced or removed; never the value
            "auth_value_stored": connection.has_secret,
        },
        team=connection.team,
    )
    _require(actor, "change", connection)
    return connection


def _require(actor, action: str, connection: Connection) -> None:
    if not allows(actor, action, connection):
        raise PermissionDenied(f"you may not {action} connection {connection}")


@transaction.atomic
def check(connection: Connection, *, actor) -> outbound.ConnectionCheck:
    """One guarded request ("test connection"); the outcome is recorded, never the secret."""
    _require(actor, "use", connection)
    try:
        spec = spec_for(connection)
    except InvalidToken:  # saved under a key since removed from STEWARD_ENCRYPTION_KEY
        message = "the stored secret cannot be decrypted with the current key: save it again"
        result = outbound.ConnectionCheck(False, None, message, 0.0)
    else:
        result = outbound.check_connection(spec)
    ledger.append(
        "connection.tested",
        actor=actor,
        body={
            **_body(connection),
            "ok": result.ok,
            "status": result.status,
            "message": result.message[:500],
            "latency_ms": round(result.latency_ms, 1),
        },
        team=connection.team,
    )
    return result


def references(definition) -> list[tuple[str, str]]:
    """(path, connection id) of every connection an agent definition names: its kind's
    `connection_id` settings, tools included, wherever they are in its config."""
    found: list[tuple[str, str]] = []

    def walk(value, path: str):
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}"
                if key in ("connection_id", "connection") and isinstance(item, (str, int)):
                    if not isinstance(item, bool) and str(item).strip():
                        found.append((where, str(item).strip()))
                else:
                    walk(item, where)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")

    if isinstance(definition, dict):
        walk(definition.get("config") or {}, "config")
    return found


def referenced_ids(definition) -> set[str]:
    return {ident for _, ident in references(definition)}


def check_usable(user, definition) -> None:
    """ConnectionFieldError at the path of the first connection `user` may not use."""
    named = references(definition)
    if not named:
        return
    allowed = {str(pk) for pk in usable(user).values_list("pk", flat=True)}
    for path, ident in named:
        if ident not in allowed:
            raise ConnectionFieldError(
                path, f"choose a connection you may use (#{ident[:20]} is not one)"
            )


def visible_names(user, ids) -> dict[str, str]:
    """Names of the connections among `ids` that `user` may see, for pages."""
    wanted = [int(i) for i in ids if str(i).isdigit()]
    rows = Connection.objects.restrict(user, "view").filter(Q(pk__in=wanted))
    return {str(pk): name for pk, name in rows.values_list("pk", "name")}
