"""Agents and connections for tests, made through the real services (so every ledger record
and permission check happens as in production)."""

from __future__ import annotations

from agents import connections, versions
from governance.models import Team


def rules_definition(**overrides) -> dict:
    """A small KYC-style decision table: amount and country in, a limit and a decision out."""
    definition = {
        "kind": "rules",
        "description": "Decides the credit limit from the amount and the country",
        "input_fields": [
            {"name": "customer_id", "type": "text"},
            {"name": "amount", "type": "number"},
            {"name": "country", "type": "choice", "choices": ["DE", "FR", "US"]},
            {"name": "full_name", "type": "text", "required": False, "personal": True},
        ],
        "output_fields": [{"name": "limit", "type": "number"}],
        "subject_field": "customer_id",
        "confidence_threshold": 0.5,
        "config": {
            "hit_policy": "unique",
            "rules": [
                {
                    "condition": "input.amount < 1000.0",
                    "outputs": {"limit": 1000},
                    "decision": "approve",
                    "confidence": 0.95,
                    "rationale": "small amounts are approved",
                },
                {
                    "condition": "input.amount >= 1000.0 && input.country == 'US'",
                    "outputs": {"limit": 0},
                    "decision": "refer",
                    "confidence": 0.8,
                },
            ],
            "default": {"outputs": {"limit": 0}, "decision": "refer", "confidence": 0.9},
        },
    }
    definition.update(overrides)
    return definition


def human_definition(team: Team, **overrides) -> dict:
    definition = {
        "kind": "human",
        "description": "A person checks the documents",
        "input_fields": [{"name": "customer_id", "type": "text"}],
        "output_fields": [{"name": "verdict", "type": "choice", "choices": ["ok", "not_ok"]}],
        "config": {"team_id": team.pk, "instructions": "Check the passport against the file."},
    }
    definition.update(overrides)
    return definition


def make_agent(actor, team: Team, definition: dict | None = None, name: str = "Credit limit"):
    return versions.create(
        versions.AGENT,
        actor=actor,
        name=name,
        team=team,
        definition=definition or rules_definition(),
    )


def publish(agent, author, approver):
    """Submit the draft as `author` and approve it as `approver`."""
    version = versions.submit(agent, actor=author, note="ready")
    return versions.approve(agent, actor=approver, number=version.number)


def make_connection(actor, team: Team, **values):
    settings = {
        "name": "CRM",
        "kind": "http",
        "base_url": "https://crm.example.com/api",
        "auth_method": "bearer",
        "secret": "s3cr3t-token-value-42",
    }
    settings.update(values)
    return connections.create(actor=actor, team=team, **settings)
