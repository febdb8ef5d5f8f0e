"""GET /api/v1/decisions/ and /api/v1/decisions/<seq>/: visibility, filters, cursor pages."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from governance import ledger
from governance.actors import Actor
from governance.models import DecisionRecord, Team
from governance.personal import forget_subject

pytestmark = pytest.mark.django_db

API = "/api/v1/decisions/"
AGENT = Actor("agent", "a1v1", "KYC check v1")


def append(event="agent.decided", *, body=None, **kwargs):
    body = {"decision": "approve", "confidence": 0.9} if body is None else body
    return ledger.append(event, actor=kwargs.pop("actor", AGENT), body=body, **kwargs)


def seqs(response) -> list[int]:
    return [item["seq"] for item in response.json()["results"]]


@pytest.fixture
def teams(demo_people):
    return {team.name: team for team in Team.objects.all()}


@pytest.fixture
def api(demo_people):
    def as_user(username):
        client = APIClient()
        client.force_authenticate(demo_people[username])
        return client

    return as_user


@pytest.fixture
def team_records(teams):
    return {
        "onboarding": append(team=teams["Onboarding"]).seq,
        "support": append(team=teams["Support"]).seq,
    }


def all_seqs(client, params=None) -> list[int]:
    response = client.get(API, {"page_size": 500, **(params or {})})
    assert response.status_code == 200, response.content
    return seqs(response)


# --- Authentication and visibility --------------------------------------------------------------


def test_anonymous_calls_get_json_not_a_sign_in_redirect(team_records):
    for url in (API, f"{API}{team_records['support']}/"):
        response = APIClient().get(url)
        assert response.status_code in (401, 403)
        assert response["Content-Type"].startswith("application/json")
        assert "credentials" in response.json()["detail"]


def test_a_token_authenticates(demo_people, team_records):
    token = Token.objects.create(user=demo_people["compliance"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(API).status_code == 200


@pytest.mark.parametrize("persona", ["compliance", "admin"])
def test_compliance_officers_and_admins_see_every_record(api, team_records, persona):
    assert all_seqs(api(persona)) == list(
        DecisionRecord.objects.order_by("-seq").values_list("seq", flat=True)
    )


def test_a_builder_sees_their_teams_records_only(api, team_records):
    found = all_seqs(api("builder"))
    assert team_records["onboarding"] in found
    assert team_records["support"] not in found


def test_builder2_does_not_see_onboarding_records(api, team_records):
    found = all_seqs(api("builder2"))
    assert team_records["support"] in found
    assert team_records["onboarding"] not in found


def test_a_hidden_record_is_a_404_like_a_missing_one(api, team_records):
    client = api("builder2")
    assert client.get(f"{API}{team_records['onboarding']}/").status_code == 404
    assert client.get(f"{API}999999/").status_code == 404
    assert client.get(f"{API}{team_records['support']}/").status_code == 200


# --- What a record says -------------------------------------------------------------------------


def test_a_record_reads_as_its_canonical_json_with_an_integrity_check(api, teams):
    record = append(
        body={"inputs": {"amount": 5}, "decision": "approve", "confidence": 0.75},
        team=teams["Onboarding"],
        agent_version=("av5", "KYC check v5"),
        run=("r-1", "Run 1"),
    )
    data = api("compliance").get(f"{API}{record.seq}/").json()
    assert data["seq"] == record.seq
    assert data["event"] == "agent.decided"
    assert data["actor"] == {"type": "agent", "id": "a1v1", "name": "KYC check v1"}
    assert data["refs"]["agent_version"] == {"id": "av5", "name": "KYC check v5"}
    assert "workflow" not in data["refs"]
    assert (data["decision"], data["confidence"]) == ("approve", 0.75)
    assert data["body"]["inputs"] == {"amount": 5}
    assert data["canonical"] == record.canonical
    assert (data["hash"], data["prev_hash"]) == (record.hash, record.prev_hash)
    assert data["integrity"]["hash_matches"] is True
    assert data["integrity"]["links_to_previous"] is True
    assert data["page_url"].endswith(f"/decisions/{record.seq}/")


def test_personal_data_is_given_to_compliance_and_withheld_from_a_builder(api, teams):
    record = append(personal={"name": "Jane Roe"}, subject="cust-1", team=teams["Onboarding"])
    personal = api("compliance").get(f"{API}{record.seq}/").json()["personal"]
    assert personal["status"] == "readable"
    assert personal["data"] == {"name": "Jane Roe"}

    response = api("builder").get(f"{API}{record.seq}/")
    assert "Jane Roe" not in response.content.decode()
    personal = response.json()["personal"]
    assert personal["status"] == "withheld"
    assert personal["data"] is None
    assert personal["subject"] == "cust-1"


def test_an_erased_personal_part_is_explained(api, demo_people, teams):
    record = append(personal={"name": "Jane Roe"}, subject="cust-2", team=teams["Onboarding"])
    forget_subject("cust-2", actor=demo_people["admin"], reason="request REQ-9")
    personal = api("compliance").get(f"{API}{record.seq}/").json()["personal"]
    assert personal["status"] == "erased"
    assert personal["data"] is None
    assert "by admin" in personal["explanation"]
    assert "request REQ-9" in personal["explanation"]


# --- Filters ------------------------------------------------------------------------------------


@pytest.fixture
def filter_records():
    a = append(body={"decision": "approve", "confidence": 0.9}, team=("901", "Risk"), run="r1")
    b = append(body={"decision": "reject", "confidence": 0.3}, team=("902", "Cards"), agent="a2")
    c = append("run.started", body={}, team=("901", "Risk"), workflow="w1", run="r2")
    return {"A": a.seq, "B": b.seq, "C": c.seq}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event": "agent.decided"}, "BA"),
        ({"team": "901"}, "CA"),
        ({"workflow": "w1"}, "C"),
        ({"agent": "a2"}, "B"),
        ({"run": "r1"}, "A"),
        ({"decision": "reject"}, "B"),
        ({"confidence_min": "0.5"}, "A"),
        ({"confidence_max": "0.5"}, "B"),
        ({"event": "agent.decided", "team": "901"}, "A"),
        ({"actor": "a1v1", "team": "901"}, "CA"),
    ],
)
def test_filters_are_the_log_pages_filters(api, filter_records, params, expected):
    assert all_seqs(api("compliance"), params) == [filter_records[key] for key in expected]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "not a date"}, "since"),
        ({"until": "2025-13-01"}, "until"),
        ({"confidence_min": "high"}, "confidence_min"),
        ({"confidence_max": "7"}, "confidence_max"),
        ({"confidence_min": "0.8", "confidence_max": "0.2"}, "confidence_max"),
        ({"run": "r" * 65}, "run"),
    ],
)
def test_bad_filter_values_answer_400_naming_the_field(api, params, field):
    response = api("compliance").get(API, params)
    assert response.status_code == 400
    assert field in response.json()


# --- Pages --------------------------------------------------------------------------------------


def test_cursor_pages_cover_the_log_without_gaps_or_repeats(api):
    expected = sorted((append("test.paging", body={}).seq for _ in range(23)), reverse=True)
    client, url, seen = api("compliance"), f"{API}?event=test.paging&page_size=5", []
    with CaptureQueriesContext(connection) as queries:
        while url:
            page = client.get(url).json()
            seen += [item["seq"] for item in page["results"]]
            url = page["next"]
    assert seen == expected
    assert not any("OFFSET" in query["sql"].upper() for query in queries.captured_queries)


@pytest.mark.parametrize("persona", ["compliance", "builder"])
def test_list_queries_do_not_grow_with_records(api, teams, persona):
    client = api(persona)
    for n in range(10):
        append(team=teams["Onboarding"], personal={"n": n}, subject=f"s-{n % 3}")
    client.get(API)  # the user's roles are loaded once and kept on the user
    with CaptureQueriesContext(connection) as few:
        assert client.get(API).status_code == 200
    for n in range(190):
        append(team=teams["Onboarding"], personal={"n": n}, subject=f"s-{n % 7}")
    with CaptureQueriesContext(connection) as many:
        response = client.get(API)
    assert len(response.json()["results"]) == 50
    assert len(many) == len(few)


# --- Schema -------------------------------------------------------------------------------------


def test_the_schema_documents_the_decisions_api_without_warnings():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert not [m for m in messages if "decision" in m.lower()], messages
    operation = schema["paths"]["/api/v1/decisions/"]["get"]
    names = {parameter["name"] for parameter in operation["parameters"]}
    assert {"cursor", "page_size", "event", "team", "confidence_min", "since"} <= names
    assert "/api/v1/decisions/{seq}/" in schema["paths"]


def test_the_schema_endpoint_answers(client, demo_people):
    client.force_login(demo_people["builder"])
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/v1/decisions/" in response.content
