"""Connections: services (secrets encrypted, ledger records without them, allow_internal for
admins only), pages (list, detail, forms with a write-only secret, "test connection") and the
API (`/api/v1/connections/`, `test/`)."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from rest_framework.test import APIClient

from agents import connections
from agents.models import Connection
from governance.models import DecisionRecord, Team
from tests.agent_factories import make_connection
from tests.support.http_service import Reply, http_service_fixture, make_service_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-token-value-42"


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def crm(demo_people, onboarding):
    return make_connection(demo_people["builder"], onboarding)


def records(event: str) -> list[dict]:
    return [json.loads(r.canonical) for r in DecisionRecord.objects.filter(event=event)]


# --- Services -----------------------------------------------------------------------------------


def test_the_secret_is_encrypted_and_decrypts_for_executors(crm):
    stored = bytes(crm.encrypted_secret)
    assert SECRET.encode() not in stored
    assert connections.spec_for(crm).secret == SECRET


def test_creation_is_recorded_without_the_secret(crm):
    record = records("connection.created")[-1]
    assert record["body"]["settings"]["auth_value_stored"] is True
    assert record["body"]["settings"]["base_url"] == "https://crm.example.com/api"
    assert SECRET not in json.dumps(record)


def test_a_blank_secret_keeps_the_stored_one(crm, demo_people):
    connections.update(crm, actor=demo_people["builder"], secret="", description="Our CRM")
    crm.refresh_from_db()
    assert connections.spec_for(crm).secret == SECRET
    record = records("connection.changed")[-1]
    assert record["body"]["auth_value"] == "kept"
    assert record["body"]["changed"] == ["description"]


def test_a_new_secret_replaces_the_old_and_the_record_says_so_only(crm, demo_people):
    connections.update(crm, actor=demo_people["builder"], secret="another-secret-99")
    crm.refresh_from_db()
    assert connections.spec_for(crm).secret == "another-secret-99"
    record = records("connection.changed")[-1]
    assert record["body"]["auth_value"] == "replaced"
    assert "another-secret-99" not in json.dumps(record)


def test_switching_auth_to_none_removes_the_secret(crm, demo_people):
    connections.update(crm, actor=demo_people["builder"], auth_method="none")
    crm.refresh_from_db()
    assert crm.encrypted_secret is None
    assert records("connection.changed")[-1]["body"]["auth_value"] == "removed"


def test_an_auth_method_with_a_secret_needs_one(demo_people, onboarding):
    with pytest.raises(connections.ConnectionFieldError) as caught:
        make_connection(demo_people["builder"], onboarding, secret="")
    assert caught.value.field == "secret"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"base_url": "ftp://crm.example.com"}, "base_url"),
        ({"base_url": "https://user:pw@crm.example.com"}, "base_url"),
        ({"base_url": "http://2130706433/"}, "base_url"),
        ({"auth_method": "api_key_header", "header_name": "bad header"}, "header_name"),
        ({"auth_method": "basic", "username": ""}, "username"),
        ({"auth_method": "oauth2_client_credentials", "username": "id"}, "token_url"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"name": "x" * 101}, "name"),
        ({"secret": "line\nbreak"}, "secret"),
    ],
)
def test_bad_settings_name_the_field(demo_people, onboarding, values, field):
    with pytest.raises(connections.ConnectionFieldError) as caught:
        make_connection(demo_people["builder"], onboarding, **values)
    assert caught.value.field == field
    assert not Connection.objects.exists()


def test_names_are_unique(crm, demo_people, onboarding):
    with pytest.raises(connections.ConnectionFieldError) as caught:
        make_connection(demo_people["builder"], onboarding, name="crm")
    assert caught.value.field == "name"


def test_only_admins_allow_internal_addresses(demo_people, onboarding, crm):
    with pytest.raises(PermissionDenied):
        make_connection(demo_people["builder"], onboarding, name="Local", allow_internal=True)
    with pytest.raises(PermissionDenied):
        connections.update(crm, actor=demo_people["builder"], allow_internal=True)
    connections.update(crm, actor=demo_people["admin"], allow_internal=True)
    crm.refresh_from_db()
    assert crm.allow_internal is True
    # A builder's later edit keeps the admin's choice.
    connections.update(crm, actor=demo_people["builder"], description="still internal")
    crm.refresh_from_db()
    assert crm.allow_internal is True


def test_builders_create_only_for_their_teams(demo_people, onboarding):
    with pytest.raises(PermissionDenied):
        make_connection(demo_people["builder2"], onboarding)


def test_usable_connections_follow_the_use_permission(demo_people, crm):
    assert crm in connections.usable(demo_people["builder"])
    assert crm not in connections.usable(demo_people["builder2"])
    assert crm not in connections.usable(demo_people["approver"])  # may view, not use


# --- Test connection --------------------------------------------------------------------------


@pytest.fixture
def local_service(demo_people, onboarding, http_service):
    http_service.route("GET", "/api", Reply(json={"ok": True}))
    return make_connection(
        demo_people["admin"],
        onboarding,
        name="Local CRM",
        base_url=f"{http_service.url}/api",
        allow_internal=True,
    )


def test_testing_a_reachable_connection_says_so_and_records_it(
    demo_people, local_service, http_service
):
    result = connections.check(local_service, actor=demo_people["builder"])
    assert result.ok, result.message
    assert http_service.count == 1
    assert http_service.requests[-1].headers["authorization"] == f"Bearer {SECRET}"
    record = records("connection.tested")[-1]
    assert record["body"]["ok"] is True
    assert SECRET not in json.dumps(record)


def test_testing_a_loopback_url_without_internal_is_refused_without_a_request(
    demo_people, onboarding, http_service
):
    conn = make_connection(demo_people["builder"], onboarding, base_url=f"{http_service.url}/")
    result = connections.check(conn, actor=demo_people["builder"])
    assert not result.ok
    assert "loopback" in result.message
    assert http_service.count == 0


# --- Pages --------------------------------------------------------------------------------------


def test_the_list_shows_connections_of_the_users_teams_only(client, demo_people, crm):
    client.force_login(demo_people["builder"])
    assert "CRM" in client.get("/connections/").content.decode()
    client.force_login(demo_people["builder2"])
    assert ">CRM<" not in client.get("/connections/").content.decode()
    assert client.get(f"/connections/{crm.pk}/").status_code == 404
    assert client.get(f"/connections/{crm.pk}/edit/").status_code == 404
    assert client.post(f"/connections/{crm.pk}/test/").status_code == 404


def test_creating_through_the_form(client, demo_people, onboarding):
    client.force_login(demo_people["builder"])
    response = client.post(
        "/connections/new/",
        {
            "name": "Scoring",
            "team": onboarding.pk,
            "kind": "http",
            "base_url": "https://scoring.example.com",
            "auth_method": "api_key_header",
            "header_name": "X-API-Key",
            "secret": "k-123456",
            "timeout_seconds": "10",
        },
    )
    conn = Connection.objects.get(name="Scoring")
    assert response.status_code == 302
    assert connections.spec_for(conn).secret == "k-123456"


def test_a_form_error_comes_back_on_the_field_and_saves_nothing(client, demo_people, onboarding):
    client.force_login(demo_people["builder"])
    response = client.post(
        "/connections/new/",
        {
            "name": "Bad",
            "team": onboarding.pk,
            "kind": "http",
            "base_url": "gopher://x",
            "auth_method": "none",
            "timeout_seconds": "10",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_base_url_errors"' in html
    assert "scheme" in html
    assert not Connection.objects.exists()


def test_the_edit_form_never_shows_the_secret_and_blank_keeps_it(client, demo_people, crm):
    client.force_login(demo_people["builder"])
    html = client.get(f"/connections/{crm.pk}/edit/").content.decode()
    assert SECRET not in html
    assert "Leave blank to keep it" in html
    data = {
        "name": "CRM",
        "team": crm.team_id,
        "base_url": crm.base_url,
        "auth_method": "bearer",
        "secret": "",
        "timeout_seconds": "30",
    }
    assert client.post(f"/connections/{crm.pk}/edit/", data).status_code == 302
    crm.refresh_from_db()
    assert connections.spec_for(crm).secret == SECRET


def test_the_allow_internal_box_is_for_admins_only(client, demo_people, crm):
    client.force_login(demo_people["builder"])
    assert "allow_internal" not in client.get(f"/connections/{crm.pk}/edit/").content.decode()
    client.force_login(demo_people["admin"])
    assert "allow_internal" in client.get(f"/connections/{crm.pk}/edit/").content.decode()


def test_the_test_button_shows_the_result(client, demo_people, local_service):
    client.force_login(demo_people["builder"])
    response = client.post(f"/connections/{local_service.pk}/test/", HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Reachable" in html
    assert "<html" not in html


def test_the_test_button_shows_a_refusal(client, demo_people, onboarding):
    conn = make_connection(
        demo_people["builder"], onboarding, base_url="http://169.254.169.254/latest"
    )
    client.force_login(demo_people["builder"])
    html = client.post(f"/connections/{conn.pk}/test/").content.decode()
    assert "Not reached" in html
    assert "metadata" in html or "link-local" in html


# --- API ----------------------------------------------------------------------------------------


@pytest.fixture
def api():
    return APIClient()


def test_the_api_creates_with_a_write_only_secret(api, demo_people, onboarding):
    api.force_authenticate(demo_people["builder"])
    response = api.post(
        "/api/v1/connections/",
        {
            "name": "Ticketing",
            "team": onboarding.pk,
            "kind": "http",
            "base_url": "https://tickets.example.com",
            "auth_method": "bearer",
            "secret": "tk-987654321",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert "secret" not in response.json()
    assert response.json()["has_secret"] is True
    assert "tk-987654321" not in response.content.decode()


def test_the_api_never_returns_the_secret(api, demo_people, crm):
    api.force_authenticate(demo_people["builder"])
    for url in ("/api/v1/connections/", f"/api/v1/connections/{crm.pk}/"):
        response = api.get(url)
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
        assert "encrypted_secret" not in response.content.decode()


def test_the_api_answers_400_naming_the_field(api, demo_people, crm):
    api.force_authenticate(demo_people["builder"])
    response = api.patch(f"/api/v1/connections/{crm.pk}/", {"base_url": "ftp://x"}, format="json")
    assert response.status_code == 400
    assert "base_url" in response.json()


def test_the_api_refuses_allow_internal_to_builders_with_403(api, demo_people, crm):
    api.force_authenticate(demo_people["builder"])
    response = api.patch(f"/api/v1/connections/{crm.pk}/", {"allow_internal": True}, format="json")
    assert response.status_code == 403
    assert "admin" in response.json()["detail"]


def test_the_api_hides_other_teams_connections(api, demo_people, crm):
    api.force_authenticate(demo_people["builder2"])
    assert api.get(f"/api/v1/connections/{crm.pk}/").status_code == 404
    assert api.post(f"/api/v1/connections/{crm.pk}/test/").status_code == 404
    assert crm.pk not in [c["id"] for c in api.get("/api/v1/connections/").json()["results"]]


def test_the_api_test_action(api, demo_people, local_service):
    api.force_authenticate(demo_people["builder"])
    response = api.post(f"/api/v1/connections/{local_service.pk}/test/")
    assert response.status_code == 200
    assert response.json()["ok"] is True


def test_approvers_may_view_but_not_test(api, demo_people, crm):
    api.force_authenticate(demo_people["approver"])
    assert api.get(f"/api/v1/connections/{crm.pk}/").status_code == 200
    assert api.post(f"/api/v1/connections/{crm.pk}/test/").status_code == 404
