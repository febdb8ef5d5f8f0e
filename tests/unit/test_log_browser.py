"""The decision log browser: who sees which records, filters, keyset pages, htmx, record pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from governance import ledger
from governance.actors import Actor
from governance.log_queries import hash_check
from governance.log_views import decision_list
from governance.models import DecisionRecord, Team
from governance.personal import forget_subject
from governance.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/decisions/"
AGENT = Actor("agent", "a1v1", "KYC check v1")


def append(event="agent.decided", *, actor=AGENT, body=None, when=None, **refs):
    body = {"decision": "approve", "confidence": 0.9} if body is None else body
    if when is None:
        return ledger.append(event, actor=actor, body=body, **refs)
    with mock.patch("django.utils.timezone.now", return_value=when):
        return ledger.append(event, actor=actor, body=body, **refs)


def shown(response) -> list[int]:
    page = response.context["page"]
    return [record.seq for record in page.records] if page else []


@pytest.fixture
def teams(demo_people):
    return {team.name: team for team in Team.objects.all()}


@pytest.fixture
def as_user(client, demo_people):
    def login(username):
        client.force_login(demo_people[username])
        return client

    return login


@pytest.fixture
def team_records(teams):
    return {
        "onboarding": append(team=teams["Onboarding"], run=("r-1", "Run 1")).seq,
        "support": append(team=teams["Support"], run=("r-2", "Run 2")).seq,
        "system": append("ledger.checked", actor=None, body={}).seq,
    }


# --- Who sees what ------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["compliance", "admin"])
def test_compliance_officers_and_admins_see_the_whole_log(as_user, team_records, persona):
    seqs = shown(as_user(persona).get(LIST))
    assert set(team_records.values()) <= set(seqs)
    assert len(seqs) == DecisionRecord.objects.count()


def test_a_builder_sees_their_teams_records_only(as_user, team_records):
    seqs = shown(as_user("builder").get(LIST))
    assert team_records["onboarding"] in seqs
    assert team_records["support"] not in seqs
    assert team_records["system"] not in seqs


def test_builder2_does_not_see_onboarding_records(as_user, team_records):
    seqs = shown(as_user("builder2").get(LIST))
    assert team_records["support"] in seqs
    assert team_records["onboarding"] not in seqs


def test_people_see_the_records_of_their_own_actions(as_user, demo_people, teams):
    own = append("grant.changed", actor=demo_people["builder"], body={}, team=teams["Support"])
    assert own.seq in shown(as_user("builder").get(LIST))


def test_a_hidden_record_is_a_404_like_a_missing_one(as_user, team_records):
    client = as_user("builder2")
    assert client.get(f"/decisions/{team_records['onboarding']}/").status_code == 404
    assert client.get("/decisions/999999/").status_code == 404
    assert client.get(f"/decisions/{team_records['support']}/").status_code == 200


def test_anonymous_visitors_are_sent_to_sign_in(client, team_records):
    response = client.get(f"/decisions/{team_records['support']}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["admin", "builder", "builder2", "approver", "operator"])
def test_every_role_finds_the_decision_log_in_the_navigation(as_user, persona):
    assert 'href="/decisions/"' in as_user(persona).get("/").content.decode()


# --- Filters ------------------------------------------------------------------------------------

T = [datetime(2025, 3, day, 9, 0, tzinfo=UTC) for day in (1, 2, 3, 4)]


@pytest.fixture
def filter_records(demo_people):
    builder = demo_people["builder"]
    a = append(
        body={"decision": "approve", "confidence": 0.9},
        when=T[0],
        team=("901", "Risk"),
        workflow=("w1", "Onboard"),
        agent=("a1", "KYC"),
        run=("r1", ""),
    )
    b = append(
        body={"decision": "reject", "confidence": 0.3},
        when=T[1],
        team=("902", "Cards"),
        workflow=("w2", "Cards"),
        agent=("a2", "Limit"),
        run=("r2", ""),
    )
    c = append(
        "escalation.raised",
        actor=builder,
        body={},
        when=T[2],
        team=("901", "Risk"),
        workflow=("w1", "Onboard"),
        agent=("a2", "Limit"),
        run=("r3", ""),
    )
    d = append(
        "run.started",
        actor=Actor("person", "op-7", "olu"),
        body={},
        when=T[3],
        team=("902", "Cards"),
        workflow=("w2", "Cards"),
        run=("r2", ""),
    )
    return {"A": a.seq, "B": b.seq, "C": c.seq, "D": d.seq, "builder": builder}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"event": "agent.decided"}, "AB"),
        ({"team": "901"}, "AC"),
        ({"workflow": "w2"}, "BD"),
        ({"agent": "a2"}, "BC"),
        ({"run": "r2"}, "BD"),
        ({"actor": "olu"}, "D"),
        ({"actor": "op-7"}, "D"),
        ({"decision": "reject"}, "B"),
        ({"confidence_min": "0.5"}, "A"),
        ({"confidence_max": "0.5"}, "B"),
        ({"confidence_min": "0.2", "confidence_max": "0.95"}, "AB"),
        ({"since": "2025-03-02T00:00", "until": "2025-03-04T00:00"}, "BC"),
        ({"since": "2025-03-03T09:00:00"}, None),  # C, D and everything recorded since
        ({"event": "agent.decided", "team": "902"}, "B"),
    ],
)
def test_each_filter_narrows_the_log(as_user, filter_records, params, expected):
    seqs = shown(as_user("compliance").get(LIST, params))
    if expected is None:
        assert {filter_records["C"], filter_records["D"]} <= set(seqs)
        assert filter_records["B"] not in seqs
        return
    assert seqs == sorted((filter_records[key] for key in expected), reverse=True)


def test_filtering_by_a_username_finds_that_persons_actions(as_user, filter_records):
    seqs = shown(
        as_user("compliance").get(LIST, {"actor": "builder", "event": "escalation.raised"})
    )
    assert seqs == [filter_records["C"]]


@pytest.mark.parametrize(
    ("params", "label"),
    [
        ({"since": "yesterday-ish"}, "From"),
        ({"until": "31/02/2025"}, "Until"),
        ({"confidence_min": "high"}, "Confidence from"),
        ({"confidence_max": "1.5"}, "Confidence to"),
        ({"confidence_min": "0.9", "confidence_max": "0.1"}, "Confidence to"),
        ({"since": "2025-03-02T00:00", "until": "2025-03-01T00:00"}, "Until"),
        ({"team": "x" * 65}, "Team"),
        ({"before": "seven"}, "Before"),
        ({"after": "-3"}, "After"),
        ({"before": "5", "after": "3"}, "After"),
    ],
)
def test_bad_filter_values_are_a_form_error_naming_the_field(as_user, params, label):
    client = as_user("compliance")
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(LIST, params, headers=headers)
        assert response.status_code == 200
        html = response.content.decode()
        assert "These filters cannot be applied" in html
        assert f"<strong>{label}</strong>:" in html
        assert response.context["page"] is None


# --- Keyset pages -------------------------------------------------------------------------------


def test_keyset_pages_walk_the_log_without_gaps_or_repeats(as_user):
    expected = sorted((append("test.paging", body={}).seq for _ in range(120)), reverse=True)
    client = as_user("compliance")
    url, seen, pages = LIST + "?event=test.paging", [], 0
    with CaptureQueriesContext(connection) as queries:
        while url:
            response = client.get(url)
            seen += shown(response)
            pages += 1
            page = response.context["page"]
            url = response.context["older_url"] if page.has_older else None
    assert seen == expected
    assert pages == 3
    sql = " ".join(query["sql"].upper() for query in queries.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql

    # And back up again with the Newer links, from the oldest page.
    pages_above, url = [], response.context["newer_url"]
    while url:
        above = client.get(url)
        pages_above.insert(0, shown(above))
        url = above.context["newer_url"] if above.context["page"].has_newer else None
    assert [seq for page in pages_above for seq in page] + shown(response) == expected


def test_a_page_past_the_end_says_so(as_user):
    append("test.paging", body={})
    response = as_user("compliance").get(LIST, {"event": "test.paging", "before": 1})
    assert "No records match these filters" in response.content.decode()
    response = as_user("compliance").get(LIST, {"before": 1})
    assert "No records on this page" in response.content.decode()


def test_the_newest_unfiltered_page_states_the_size_of_the_log_without_counting(as_user):
    for _ in range(3):
        append(body={})
    client = as_user("compliance")
    with CaptureQueriesContext(connection) as queries:
        html = client.get(LIST).content.decode()
    total = DecisionRecord.objects.count()
    assert f"of <strong>{total}</strong> records" in html
    assert not any("COUNT(" in query["sql"].upper() for query in queries.captured_queries)


@pytest.mark.parametrize("persona", ["compliance", "builder"])
def test_list_page_queries_do_not_grow_with_records(as_user, teams, persona):
    client = as_user(persona)
    for _ in range(10):
        append(team=teams["Onboarding"])
    client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        assert client.get(LIST).status_code == 200
    for _ in range(190):
        append(team=teams["Onboarding"])
    with CaptureQueriesContext(connection) as many:
        response = client.get(LIST)
    assert len(response.context["page"].records) == 50
    assert len(many) == len(few)


# --- htmx ---------------------------------------------------------------------------------------


def test_htmx_requests_get_only_the_table_with_a_shareable_url(as_user, filter_records):
    client = as_user("compliance")
    response = client.get(
        LIST, {"event": "agent.decided", "team": "", "since": ""}, headers={"HX-Request": "true"}
    )
    names = [template.name for template in response.templates]
    assert "governance/decision_list_results.html" in names
    assert "governance/decision_list.html" not in names
    html = response.content.decode()
    assert "<html" not in html
    assert 'class="data log-table"' in html
    assert response["HX-Push-Url"] == "/decisions/?event=agent.decided"
    assert "HX-Request" in response["Vary"]


def test_the_whole_page_carries_the_filters_and_the_swap_target(as_user, filter_records):
    html = as_user("compliance").get(LIST).content.decode()
    assert 'id="log-results"' in html
    assert 'hx-target="#log-results"' in html
    assert 'hx-push-url="true"' in html
    assert "htmx-indicator" in html


def test_a_history_restore_gets_the_whole_page(as_user):
    response = as_user("compliance").get(
        LIST, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.content.decode()


# --- Empty states -------------------------------------------------------------------------------


def test_no_records_matching_is_told_apart_from_an_empty_log(as_user, rf):
    html = as_user("compliance").get(LIST, {"event": "nothing.like.this"}).content.decode()
    assert "No records match these filters" in html

    loner = UserFactory(roles=[Role.BUILDER])  # no team, no actions of their own yet
    request = rf.get(LIST)
    request.user = loner
    html = decision_list(request).content.decode()
    assert "No decisions recorded yet" in html
    assert "No records match" not in html


# --- The record page ----------------------------------------------------------------------------


def test_the_record_page_shows_what_the_decision_rested_on(as_user, teams):
    record = append(
        body={
            "inputs": {"amount": 1200, "country": "DE"},
            "data_considered": ["bureau score 712"],
            "rules_applied": ["row 4: amount < 5000"],
            "output": {"limit": 3000},
            "rationale": "Within the policy band.",
            "decision": "approve",
            "confidence": 0.87,
            "model": "rules",
            "latency_ms": 42,
            "error": None,
        },
        team=teams["Onboarding"],
        workflow=("w9", "Account opening"),
        workflow_version=("wv3", "Account opening v3"),
        agent=("a9", "KYC check"),
        agent_version=("av5", "KYC check v5"),
        run=("r-77", "Run 77"),
        step=("s-2", "screen"),
    )
    html = as_user("compliance").get(record.get_absolute_url()).content.decode()
    for text in (
        "Inputs",
        "Data considered",
        "bureau score 712",
        "Rules applied",
        "row 4: amount &lt; 5000",
        "Output",
        "Rationale",
        "Within the policy band.",
        "approve",
        "0.87",
        "rules",
        "42 ms",
        "Account opening v3",
        "KYC check v5",
        "Run 77",
        "screen",
        "KYC check v1",  # the actor
        record.hash,
    ):
        assert text in html, text
    assert escape(record.canonical) in html  # the exact stored text
    assert "Hash matches" in html
    assert "Links to the previous record" in html


def test_markup_in_a_record_is_shown_as_text(as_user, teams):
    record = append(
        body={"rationale": "<script>alert('x')</script>", "decision": "<b>ok</b>"},
        team=teams["Onboarding"],
    )
    client = as_user("compliance")
    page = client.get(record.get_absolute_url()).content.decode()
    listing = client.get(LIST).content.decode()
    for html in (page, listing):
        assert "<script>alert" not in html
        assert "<b>ok</b>" not in html
        assert "&lt;b&gt;ok&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def test_personal_data_is_shown_to_compliance_and_withheld_from_a_builder(as_user, teams):
    record = ledger.append(
        "agent.decided",
        actor=AGENT,
        body={"decision": "approve"},
        personal={"name": "Jane Roe", "iban": "DE89370400440532013000"},
        subject="cust-42",
        team=teams["Onboarding"],
    )
    html = as_user("compliance").get(record.get_absolute_url()).content.decode()
    assert "Jane Roe" in html
    assert "DE89370400440532013000" in html

    html = as_user("builder").get(record.get_absolute_url()).content.decode()
    assert "cust-42" in html
    assert "Jane Roe" not in html
    assert "DE89370400440532013000" not in html
    assert "shown to compliance officers and admins only" in html


def test_an_erased_personal_part_says_when_by_whom_and_why(as_user, demo_people, teams):
    record = ledger.append(
        "agent.decided",
        actor=AGENT,
        body={},
        personal={"name": "Jane Roe"},
        subject="cust-9",
        team=teams["Onboarding"],
    )
    forget_subject("cust-9", actor=demo_people["admin"], reason="erasure request REQ-118")
    for persona in ("compliance", "builder"):
        html = as_user(persona).get(record.get_absolute_url()).content.decode()
        assert "Jane Roe" not in html
        assert re.search(r"Erased on \d{4}-\d\d-\d\d \d\d:\d\d UTC by admin", html)
        assert "erasure request REQ-118" in html


def copy_of(record: DecisionRecord) -> DecisionRecord:
    """An unsaved copy to tamper with (the table itself refuses changes)."""
    return DecisionRecord(**{f.attname: getattr(record, f.attname) for f in record._meta.fields})


def test_the_hash_check_catches_a_changed_record_and_a_broken_link():
    first = append(body={"decision": "approve"})
    second = append(body={"decision": "approve"})
    assert hash_check(first).ok
    assert hash_check(second).ok

    changed = copy_of(second)
    changed.canonical = second.canonical.replace("approve", "reject")
    check = hash_check(changed)
    assert not check.hash_matches
    assert check.recomputed != second.hash

    unlinked = copy_of(second)
    unlinked.prev_hash = "f" * 64
    check = hash_check(unlinked)
    assert not check.links_to_previous
    assert not check.ok

    malformed = copy_of(second)
    malformed.prev_hash = "not hex"
    assert hash_check(malformed).problem


@pytest.mark.postgres
def test_the_record_page_shows_a_mismatch_when_the_stored_text_was_changed(as_user, teams):
    record = append(body={"decision": "approve", "confidence": 0.9}, team=teams["Onboarding"])
    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute(
            "ALTER TABLE governance_decisionrecord "
            "DISABLE TRIGGER governance_decisionrecord_no_update_delete"
        )
        cursor.execute(
            "UPDATE governance_decisionrecord "
            "SET canonical = replace(canonical, 'approve', 'reject') WHERE seq = %s",
            [record.seq],
        )
        cursor.execute(
            "ALTER TABLE governance_decisionrecord "
            "ENABLE ALWAYS TRIGGER governance_decisionrecord_no_update_delete"
        )
    html = as_user("compliance").get(record.get_absolute_url()).content.decode()
    assert "Hash does not match" in html
    assert "Hash mismatch" in html
    # The page reads the stored canonical text, not the filter columns (which still say approve).
    assert '<div class="decision-value">reject</div>' in html


def test_the_first_record_links_to_the_genesis_hash():
    first = append()
    assert first.seq == 1
    check = hash_check(first)
    assert check.previous_seq is None
    assert check.links_to_previous
    assert check.next_links_here is None  # the head of the chain


# --- Last verification --------------------------------------------------------------------------


def test_the_log_and_the_compliance_panel_show_the_last_verification(as_user):
    client = as_user("compliance")
    assert "Not verified yet" in client.get(LIST).content.decode()
    append(
        "ledger.verified",
        actor=None,
        body={"ok": False, "first_bad_seq": 7, "reason": "hash mismatch", "records_checked": 9},
    )
    for url in (LIST, "/"):
        html = client.get(url).content.decode()
        assert "Verification failed" in html
        assert 'href="/decisions/7/"' in html
        assert "hash mismatch" in html
    append(
        "ledger.verified",
        actor=None,
        body={"ok": True, "first_bad_seq": None, "reason": "", "records_checked": 12},
    )
    html = client.get("/").content.decode()
    assert "Chain verified" in html
    assert "12 records checked" in html


def test_the_compliance_panel_lists_the_latest_records(as_user):
    client = as_user("compliance")
    latest = [append(body={"decision": f"d{n}"}).seq for n in range(6)]
    html = client.get("/").content.decode()
    for seq in latest[-5:]:
        assert f'href="/decisions/{seq}/"' in html
    assert "Records in the log" in html


# --- Pages stay within the CSP ------------------------------------------------------------------


def test_log_pages_carry_no_inline_script_or_style(as_user, filter_records):
    client = as_user("compliance")
    query = urlencode({"event": "agent.decided", "confidence_min": "0.1"})
    for url in (LIST, f"{LIST}?{query}", f"/decisions/{filter_records['A']}/", "/"):
        html = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url
