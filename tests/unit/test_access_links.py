"""Every object's page leads to its Access page (the grants UI), for anyone who may view it."""

from __future__ import annotations

import pytest
from django.urls import reverse

from governance.models import Team
from tests.agent_factories import make_agent, make_connection
from tests.workflow_factories import field, human_agent, workflow

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("kind", ["agent", "workflow", "connection"])
@pytest.mark.parametrize("persona", ["builder", "admin", "compliance"])
def test_object_pages_link_to_their_access_page(client, demo_people, kind, persona):
    team = Team.objects.get(name="Onboarding")
    builder = demo_people["builder"]
    if kind == "agent":
        obj = make_agent(builder, team)
    elif kind == "workflow":
        review = human_agent(demo_people, team, "Review", [field("case")], [field("verdict")])
        steps = [{"key": "review", "agent_id": review.pk}]
        definition = {"pattern": "sequential", "input_fields": [field("case")], "steps": steps}
        obj = workflow(demo_people, team, "Onboarding flow", definition)
    else:
        obj = make_connection(builder, team)
    client.force_login(demo_people[persona])

    page = client.get(obj.get_absolute_url())

    assert page.status_code == 200
    access = reverse("object-access", args=[type(obj)._meta.label_lower, obj.pk])
    assert f'href="{access}"' in page.content.decode()
    assert client.get(access).status_code == 200
