"""A connection's secret is encrypted at rest and never leaves Steward except in the request
it authenticates: not in the database column in clear, not in any page, API response or
ledger record."""

from __future__ import annotations

import base64

import pytest
from django.db import connection as db
from rest_framework.test import APIClient

from agents import connections, tryit
from governance.models import DecisionRecord, Team
from tests.agent_factories import make_agent, make_connection
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "Zq8-very-secret-credential-7781"
NEW_SECRET = "Xy5-replacement-credential-0042"


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def world(demo_people, onboarding, http_service):
    """A basic-auth connection to a loopback service, an http agent using it, tried once,
    the connection tested once and its secret replaced once."""
    http_service.route("GET", "/api", Reply(json={"ok": True}))
    http_service.route("GET", "/api/risk/c-1", Reply(json={"risk": "low"}))
    crm = make_connection(
        demo_people["admin"],
        onboarding,
        name="Secret CRM",
        base_url=f"{http_service.url}/api",
        auth_method="basic",
        username="steward",
        secret=SECRET,
        allow_internal=True,
    )
    definition = {
        "kind": "http",
        "input_fields": [{"name": "customer_id", "type": "text"}],
        "output_fields": [{"name": "risk", "type": "text"}],
        "config": {
            "connection_id": str(crm.pk),
            "path_template": "/risk/{{ customer_id }}",
            "response_mapping": {"risk": "/risk"},
        },
    }
    agent = make_agent(demo_people["builder"], onboarding, definition, name="Risk")
    result = tryit.try_agent(agent, actor=demo_people["builder"], inputs={"customer_id": "c-1"})
    assert result.outcome == "decided", result.message
    assert connections.check(crm, actor=demo_people["builder"]).ok
    return {"connection": crm, "agent": agent, "service": http_service}


def forms_of(secret: str) -> list[str]:
    """The secret and the encodings it travels in (basic auth's base64)."""
    return [
        secret,
        base64.b64encode(f"steward:{secret}".encode()).decode(),
        base64.b64encode(secret.encode()).decode().rstrip("="),
    ]


def test_the_secret_reached_the_service_it_authenticates(world):
    sent = world["service"].requests[-1].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(f"steward:{SECRET}".encode()).decode()


def test_the_database_column_does_not_hold_the_secret_in_clear(world):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_secret FROM agents_connection WHERE id = %s",
            [world["connection"].pk],
        )
        (raw,) = cursor.fetchone()
    raw = bytes(raw)
    assert raw.startswith(b"gAAAAA")  # a Fernet token
    for form in forms_of(SECRET):
        assert form.encode() not in raw


def test_no_ledger_record_holds_the_secret(world, demo_people):
    connections.update(world["connection"], actor=demo_people["admin"], secret=NEW_SECRET)
    connections.check(world["connection"], actor=demo_people["admin"])
    text = "\n".join(DecisionRecord.objects.values_list("canonical", flat=True))
    assert "connection.changed" in text
    for secret in (SECRET, NEW_SECRET):
        for form in forms_of(secret):
            assert form not in text


def test_no_page_shows_the_secret(world, client, demo_people):
    crm, agent = world["connection"], world["agent"]
    seqs = DecisionRecord.objects.values_list("seq", flat=True)
    pages = [
        "/",
        "/connections/",
        f"/connections/{crm.pk}/",
        f"/connections/{crm.pk}/edit/",
        f"/agents/{agent.pk}/",
        f"/agents/{agent.pk}/edit/",
        f"/agents/{agent.pk}/try/",
        f"/agents/{agent.pk}/versions/1/",
        "/decisions/",
        *(f"/decisions/{seq}/" for seq in seqs),
    ]
    for user in ("admin", "builder", "compliance"):
        client.force_login(demo_people[user])
        for url in pages:
            response = client.get(url)
            if response.status_code == 404:
                continue
            html = response.content.decode()
            for form in forms_of(SECRET):
                assert form not in html, (user, url)
    client.force_login(demo_people["builder"])
    tried = client.post(
        f"/agents/{agent.pk}/try/", {"version": "1", "input-customer_id": "c-1"}
    ).content.decode()
    tested = client.post(f"/connections/{crm.pk}/test/").content.decode()
    for form in forms_of(SECRET):
        assert form not in tried
        assert form not in tested


def test_no_api_response_shows_the_secret(world, demo_people, onboarding):
    crm, agent = world["connection"], world["agent"]
    api = APIClient()
    api.force_authenticate(demo_people["admin"])
    responses = [
        api.get("/api/v1/connections/"),
        api.get(f"/api/v1/connections/{crm.pk}/"),
        api.post(f"/api/v1/connections/{crm.pk}/test/"),
        api.patch(f"/api/v1/connections/{crm.pk}/", {"secret": NEW_SECRET}, format="json"),
        api.post(
            "/api/v1/connections/",
            {
                "name": "Another",
                "team": onboarding.pk,
                "kind": "http",
                "base_url": "https://x.example.com",
                "auth_method": "bearer",
                "secret": NEW_SECRET,
            },
            format="json",
        ),
        api.get(f"/api/v1/agents/{agent.pk}/"),
        api.post(
            f"/api/v1/agents/{agent.pk}/try/", {"inputs": {"customer_id": "c-1"}}, format="json"
        ),
        api.get("/api/v1/decisions/"),
    ]
    for response in responses:
        assert response.status_code < 400, response.content
        body = response.content.decode()
        for secret in (SECRET, NEW_SECRET):
            for form in forms_of(secret):
                assert form not in body


def test_a_connection_spec_never_prints_its_secret(world):
    spec = connections.spec_for(world["connection"])
    assert SECRET not in repr(spec)
    assert SECRET not in str(spec)
