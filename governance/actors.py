"""Who did something, and what it belongs to, as the ledger records them: ids and name snapshots.

The ledger never holds foreign keys; these small values are what callers pass to `append`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    type: str  # "person", "agent" or "system"
    id: str = ""
    name: str = ""

    def as_dict(self) -> dict:
        return {"type": self.type, "id": self.id, "name": self.name}


SYSTEM = Actor("system", "", "steward")

ACTOR_TYPES = {"person", "agent", "system"}


def actor_of(value) -> Actor:
    """An Actor from a user, an Actor, or None (the system itself)."""
    if value is None:
        return SYSTEM
    if isinstance(value, Actor):
        if value.type not in ACTOR_TYPES:
            raise ValueError(f"actor.type: must be one of {sorted(ACTOR_TYPES)}")
        return value
    if getattr(value, "is_authenticated", False) and hasattr(value, "get_username"):
        return Actor("person", str(value.pk), value.get_username())
    raise TypeError(f"actor: expected a user, an Actor or None, got {type(value).__name__}")


@dataclass(frozen=True)
class Ref:
    """Something a record belongs to: a team, workflow, agent, run, step, version."""

    id: str
    name: str = ""

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name}


def ref_of(value) -> Ref | None:
    if value is None or value == "":
        return None
    if isinstance(value, Ref):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return Ref(str(value[0]), str(value[1]))
    if isinstance(value, (str, int)):
        return Ref(str(value), "")
    if hasattr(value, "pk"):
        return Ref(str(value.pk), str(value))
    raise TypeError(f"expected a model instance, Ref, (id, name) or id; got {type(value).__name__}")
