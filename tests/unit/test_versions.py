"""Versions and four-eyes publishing, through the services every page and API call uses."""

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, transaction

from agents import versions
from agents.definitions import DefinitionError
from agents.models import Agent, AgentVersion, VersionStatus
from governance.models import DecisionRecord, Team
from governance.roles import Role

pytestmark = pytest.mark.django_db


def human_definition(team: Team, instructions: str = "Check the documents.") -> dict:
    return {
        "kind": "human",
        "description": "A person reviews the documents",
        "input_fields": [{"name": "customer_id", "type": "text"}],
        "output_fields": [{"name": "verdict", "type": "choice", "choices": ["ok", "not_ok"]}],
        "config": {"team_id": team.pk, "instructions": instructions},
    }


@pytest.fixture
def onboarding(demo_people):
    return Team.objects.get(name="Onboarding")


@pytest.fixture
def agent(demo_people, onboarding):
    return versions.create(
        versions.AGENT,
        actor=demo_people["builder"],
        name="Document review",
        team=onboarding,
        definition=human_definition(onboarding),
    )


def events(event: str) -> list[dict]:
    return [json.loads(r.canonical) for r in DecisionRecord.objects.filter(event=event)]


def test_a_builder_creates_an_agent_with_a_first_draft(agent, demo_people):
    version = agent.versions.get()
    assert (version.number, version.status) == (1, VersionStatus.DRAFT)
    assert version.author == demo_people["builder"]
    created = events("definition.created")[-1]
    assert created["refs"]["agent"]["name"] == "Document review"
    assert created["refs"]["team"]["name"] == "Onboarding"


def test_builders_cannot_create_for_a_team_they_are_not_in(demo_people, onboarding):
    with pytest.raises(PermissionDenied):
        versions.create(
            versions.AGENT,
            actor=demo_people["builder2"],
            name="Sneaky",
            team=onboarding,
            definition=human_definition(onboarding),
        )
    assert not Agent.objects.exists()


def test_an_invalid_definition_names_the_field_and_saves_nothing(demo_people, onboarding):
    bad = human_definition(onboarding)
    bad["output_fields"][0]["type"] = "colour"
    with pytest.raises(DefinitionError) as caught:
        versions.create(
            versions.AGENT,
            actor=demo_people["builder"],
            name="Bad",
            team=onboarding,
            definition=bad,
        )
    assert caught.value.path == "output_fields[0].type"
    assert not Agent.objects.exists()


def test_another_team_cannot_edit(agent, demo_people, onboarding):
    with pytest.raises(PermissionDenied):
        versions.save_draft(agent, human_definition(onboarding, "x"), actor=demo_people["builder2"])


def test_the_author_cannot_approve_their_own_version(agent, demo_people):
    author = demo_people["builder"]
    # Even holding the approver role on the team, the author is not the second pair of eyes.
    from governance import roles

    roles.assign_role(author, Role.APPROVER, actor=None)
    versions.submit(agent, actor=author)
    with pytest.raises(versions.FourEyesViolation):
        versions.approve(agent, actor=author, number=1)
    assert AgentVersion.objects.get().status == VersionStatus.SUBMITTED


def test_a_second_person_publishes_and_the_version_is_frozen(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"], note="first cut")
    published = versions.approve(agent, actor=demo_people["approver"], number=1)
    agent.refresh_from_db()
    assert agent.published_version == published
    assert published.status == VersionStatus.PUBLISHED
    record = events("definition.published")[-1]
    assert record["body"]["version"] == 1
    assert record["actor"]["name"] == "approver"


def test_published_versions_cannot_be_changed_by_any_path(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"])
    published = versions.approve(agent, actor=demo_people["approver"], number=1)
    published.definition = {"tampered": True}
    with pytest.raises(DatabaseError), transaction.atomic():
        published.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        AgentVersion.objects.filter(pk=published.pk).update(review_reason="edited later")
    with pytest.raises(DatabaseError), transaction.atomic():
        AgentVersion.objects.filter(pk=published.pk).delete()
    assert AgentVersion.objects.get(pk=published.pk).definition["kind"] == "human"


def test_a_submitted_definition_is_frozen(agent, demo_people):
    submitted = versions.submit(agent, actor=demo_people["builder"])
    with pytest.raises(DatabaseError), transaction.atomic():
        AgentVersion.objects.filter(pk=submitted.pk).update(definition={"kind": "x"})


def test_editing_after_submission_starts_a_new_draft(agent, demo_people, onboarding):
    versions.submit(agent, actor=demo_people["builder"])
    draft = versions.save_draft(
        agent, human_definition(onboarding, "Check twice."), actor=demo_people["builder"]
    )
    assert draft.number == 2
    assert draft.status == VersionStatus.DRAFT


def test_rejection_needs_a_reason_and_is_recorded(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"])
    with pytest.raises(versions.VersionError) as caught:
        versions.reject(agent, actor=demo_people["approver"], number=1, reason="  ")
    assert caught.value.field == "reason"
    versions.reject(agent, actor=demo_people["approver"], number=1, reason="Instructions vague")
    assert AgentVersion.objects.get().status == VersionStatus.REJECTED
    assert events("definition.rejected")[-1]["body"]["reason"] == "Instructions vague"


def test_people_without_publish_cannot_approve(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"])
    for persona in ("builder2", "operator", "compliance"):
        with pytest.raises(PermissionDenied):
            versions.approve(agent, actor=demo_people[persona], number=1)


def test_rollback_republishes_an_earlier_version_through_four_eyes(agent, demo_people, onboarding):
    builder, approver = demo_people["builder"], demo_people["approver"]
    versions.submit(agent, actor=builder)
    versions.approve(agent, actor=approver, number=1)
    versions.save_draft(agent, human_definition(onboarding, "New wording."), actor=builder)
    versions.submit(agent, actor=builder)
    versions.approve(agent, actor=approver, number=2)
    rollback = versions.rollback(agent, actor=builder, number=1, note="v2 confused people")
    assert (rollback.number, rollback.status, rollback.rollback_of) == (3, "submitted", 1)
    agent.refresh_from_db()
    assert agent.published_version.number == 2  # nothing changes until approved
    from governance import roles

    roles.assign_role(builder, Role.APPROVER, actor=None)  # still not their own rollback
    with pytest.raises(versions.FourEyesViolation):
        versions.approve(agent, actor=builder, number=3)
    versions.approve(agent, actor=approver, number=3)
    agent.refresh_from_db()
    assert agent.published_version.number == 3
    assert agent.published_version.definition["config"]["instructions"] == "Check the documents."


def test_rollback_to_a_version_never_published_is_refused(agent, demo_people):
    with pytest.raises(versions.VersionError, match="never published"):
        versions.rollback(agent, actor=demo_people["builder"], number=1)


def test_submitting_twice_or_without_a_draft_is_refused(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"])
    with pytest.raises(versions.VersionError, match="no draft"):
        versions.submit(agent, actor=demo_people["builder"])


def test_withdrawing_returns_the_submission_to_draft(agent, demo_people):
    versions.submit(agent, actor=demo_people["builder"])
    withdrawn = versions.withdraw(agent, actor=demo_people["builder"])
    assert withdrawn.status == VersionStatus.DRAFT


def test_the_kind_of_an_agent_never_changes(agent, demo_people):
    with pytest.raises(DefinitionError, match="kinds never change"):
        versions.save_draft(
            agent,
            {"kind": "rules", "input_fields": [], "output_fields": [], "config": {}},
            actor=demo_people["builder"],
        )


# --- What a definition points at is checked where drafts are saved ----------------------------


def http_definition(connection_id) -> dict:
    return {
        "kind": "http",
        "description": "Looks the customer up",
        "input_fields": [{"name": "customer_id", "type": "text"}],
        "output_fields": [{"name": "risk", "type": "text"}],
        "config": {
            "connection_id": str(connection_id),
            "method": "GET",
            "path_template": "/customers/{customer_id}",
            "response_mapping": {"risk": "/risk"},
        },
    }


def test_an_agent_may_only_use_connections_its_author_may_use(demo_people, onboarding, agent):
    from agents import connections
    from agents.models import Connection

    support = Team.objects.get(name="Support")
    theirs = Connection.objects.create(
        name="Onboarding CRM", team=onboarding, kind="http", base_url="https://crm.example.com"
    )
    before = Agent.objects.count()
    with pytest.raises(connections.ConnectionFieldError) as refused:
        versions.create(
            versions.AGENT,
            actor=demo_people["builder2"],
            name="Lookup",
            team=support,
            definition=http_definition(theirs.pk),
        )
    assert refused.value.field == "config.connection_id"
    assert Agent.objects.count() == before
    ours = Connection.objects.create(
        name="Support CRM", team=support, kind="http", base_url="https://crm.example.com"
    )
    lookup = versions.create(
        versions.AGENT,
        actor=demo_people["builder2"],
        name="Lookup",
        team=support,
        definition=http_definition(ours.pk),
    )
    with pytest.raises(connections.ConnectionFieldError):
        versions.save_draft(lookup, http_definition(theirs.pk), actor=demo_people["builder2"])
    assert versions.draft_of(lookup).definition["config"]["connection_id"] == str(ours.pk)


def test_a_workflow_may_only_use_agents_its_author_may_see(demo_people, onboarding, agent):
    from agents.models import Workflow

    support = Team.objects.get(name="Support")
    hidden = versions.create(
        versions.AGENT,
        actor=demo_people["builder2"],
        name="Support review",
        team=support,
        definition=human_definition(support),
    )

    def flow(agent_id):
        return {
            "input_fields": [{"name": "customer_id", "type": "text"}],
            "pattern": "sequential",
            "steps": [{"key": "review", "agent_id": agent_id}],
            "triggers": [],
        }

    with pytest.raises(DefinitionError) as refused:
        versions.create(
            versions.WORKFLOW,
            actor=demo_people["builder"],
            name="Onboard",
            team=onboarding,
            definition=flow(hidden.pk),
        )
    assert refused.value.path == "steps[0].agent_id"
    assert not Workflow.objects.filter(name="Onboard").exists()
    onboard = versions.create(
        versions.WORKFLOW,
        actor=demo_people["builder"],
        name="Onboard",
        team=onboarding,
        definition=flow(agent.pk),
    )
    with pytest.raises(DefinitionError, match="not visible"):
        versions.save_draft(onboard, flow(hidden.pk), actor=demo_people["builder"])
