"""`allows` and `allowed_actions` answer one object in one query; they must agree with
`restrict`, which every list uses, for every persona, object, action and kind of grant."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agents.models import Agent
from governance import grants
from governance.models import Team, User
from governance.permissions import allowed_actions, allows
from tests.agent_factories import make_agent, make_connection
from tests.workflow_factories import field, human_agent, workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(demo_people):
    onboarding, support = Team.objects.get(name="Onboarding"), Team.objects.get(name="Support")
    admin = demo_people["admin"]
    review = human_agent(demo_people, onboarding, "Review", [field("case")], [field("verdict")])
    steps = [{"key": "review", "agent_id": review.pk}]
    definition = {"pattern": "sequential", "input_fields": [field("case")], "steps": steps}
    objects = [
        review,
        make_agent(demo_people["builder2"], support, name="Support triage"),
        workflow(demo_people, onboarding, "Onboarding flow", definition),
        make_connection(demo_people["builder"], onboarding),
        make_connection(demo_people["builder2"], support, name="Ticketing"),
    ]
    # Grants of several kinds: to a person, to a team, of an action that also lets them view.
    grants.grant(objects[1], actor=admin, action="change", user=demo_people["builder"])
    grants.grant(objects[1], actor=admin, action="publish", team=onboarding)
    grants.grant(objects[2], actor=admin, action="run", user=demo_people["builder2"])
    grants.grant(objects[4], actor=admin, action="use", team=onboarding)
    grants.grant(objects[3], actor=admin, action="manage_access", user=demo_people["operator"])
    inactive = User.objects.create_user("gone", password="x", is_active=False)
    people = [*demo_people.values(), inactive, AnonymousUser()]
    return people, objects


def test_allowed_actions_agree_with_restrict_for_everyone(world):
    people, objects = world
    for person in people:
        for obj in objects:
            model = type(obj)
            expected = {
                action
                for action in model.ACTIONS
                if model.objects.restrict(person, action).filter(pk=obj.pk).exists()
            }
            assert allowed_actions(person, obj) == expected, (person, obj)
            for action in model.ACTIONS:
                assert allows(person, action, obj) == (action in expected), (person, obj, action)


def test_a_deleted_object_allows_nothing_even_to_an_admin(world, demo_people):
    _, objects = world
    gone = Agent(pk=10**9, name="gone", team=Team.objects.get(name="Onboarding"))
    assert allowed_actions(demo_people["admin"], gone) == set()
    assert allowed_actions(demo_people["admin"], objects[0]) == set(Agent.ACTIONS)


def test_one_query_for_every_action_of_an_object(world, demo_people):
    _, objects = world
    builder = demo_people["builder"]
    allowed_actions(builder, objects[0])  # the roles are read once per user object
    with CaptureQueriesContext(connection) as queries:
        assert allowed_actions(builder, objects[1]) == {"view", "change", "publish"}
    assert len(queries) == 1


def test_an_unknown_action_is_refused():
    agent = Agent(pk=1)
    with pytest.raises(ValueError, match="no action 'run'"):
        allows(AnonymousUser(), "run", agent)
