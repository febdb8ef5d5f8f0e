"""List pages and API lists cost the same number of queries for 10 objects and for 500
(STYLE.md habit 10), for a builder who sees objects three ways (their team's, granted to them,
granted to their team) and for a compliance officer who sees everything.

Objects are written straight into the tables (bulk_create: the services are tested elsewhere,
this is volume); decision records go through `ledger.append`, the only way into the log.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import partial

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.test import Client
from django.test.utils import CaptureQueriesContext

from agents.definitions import validate_agent_definition
from agents.models import (
    Agent,
    AgentGroupGrant,
    AgentUserGrant,
    AgentVersion,
    VersionStatus,
    Workflow,
    WorkflowGroupGrant,
    WorkflowUserGrant,
    WorkflowVersion,
)
from governance import ledger
from governance.actors import Actor
from governance.models import Team
from governance.permissions import codename
from tests.agent_factories import rules_definition

pytestmark = pytest.mark.django_db

FEW, MANY = 10, 500
PERSONAS = ("builder", "compliance")
# url -> (kind of object it lists, how to find the objects shown in the answer)
LISTS = {
    "/agents/": ("agents", r'href="/agents/(\d+)/"'),
    "/api/v1/agents/": ("agents", None),
    "/workflows/": ("workflows", r'href="/workflows/(\d+)/"'),
    "/api/v1/workflows/": ("workflows", None),
    "/decisions/": ("decisions", r'href="/decisions/(\d+)/"'),
    "/api/v1/decisions/": ("decisions", None),
}
AGENT = Actor("agent", "a1v1", "KYC check v1")


@pytest.fixture
def teams(demo_people):
    return Team.objects.get(name="Onboarding"), Team.objects.get(name="Support")


class Volume:
    """Objects of one kind, a quarter each: the builder's team's (Onboarding), the other team's
    granted to the builder, the other team's granted to Onboarding, and the other team's not
    granted (invisible to the builder). Each has a published version and a draft or a version
    under review on top, so the list shows all three numbers."""

    def __init__(self, people, teams):
        self.builder = people["builder"]
        self.onboarding, self.support = teams
        self.count = 0
        self.definition = validate_agent_definition(rules_definition())

    def grow_to(self, kind: str, total: int) -> None:
        start, self.count = self.count, total
        if kind == "decisions":
            for n in range(start, total):
                team = self.onboarding if n % 2 else self.support
                ledger.append(
                    "agent.decided",
                    actor=AGENT,
                    body={"decision": "approve", "confidence": 0.9, "n": n},
                    team=team,
                )
            return
        model, version_model, user_grants, group_grants = {
            "agents": (Agent, AgentVersion, AgentUserGrant, AgentGroupGrant),
            "workflows": (Workflow, WorkflowVersion, WorkflowUserGrant, WorkflowGroupGrant),
        }[kind]
        extra = {"kind": "rules"} if model is Agent else {}
        objects = model.objects.bulk_create(
            model(
                name=f"{model.__name__} {n:04}",
                slug=f"{kind}-{n:04}",
                team=self.onboarding if n % 4 == 0 else self.support,
                created_by=self.builder,
                **extra,
            )
            for n in range(start, total)
        )
        parent = model._meta.model_name
        definition = (
            self.definition
            if model is Agent
            else {"pattern": "sequential", "steps": [{"key": "a", "agent_id": 1}]}
        )
        version_model.objects.bulk_create(
            version_model(
                **{parent: obj},
                number=number,
                status=status,
                definition=definition,
                author=self.builder,
            )
            for n, obj in enumerate(objects)
            for number, status in (
                (1, VersionStatus.PUBLISHED),
                (2, VersionStatus.DRAFT if n % 3 else VersionStatus.SUBMITTED),
            )
        )
        first = version_model.objects.filter(**{parent: OuterRef("pk")}, number=1)
        model.objects.filter(pk__in=[obj.pk for obj in objects]).update(
            published_version=Subquery(first.values("pk")[:1])
        )
        view = Permission.objects.get(
            content_type=ContentType.objects.get_for_model(model), codename=codename("view", model)
        )
        user_grants.objects.bulk_create(
            user_grants(user=self.builder, permission=view, content_object=obj)
            for n, obj in enumerate(objects, start)
            if n % 4 == 1
        )
        group_grants.objects.bulk_create(
            group_grants(group=self.onboarding.group, permission=view, content_object=obj)
            for n, obj in enumerate(objects, start)
            if n % 4 == 2
        )


def measure(client, url: str, pattern: str | None) -> tuple[list[str], int]:
    """The queries one GET of `url` runs, and how many objects it shows."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    if pattern is None:
        shown = len(response.json()["results"])
    else:
        shown = len(set(re.findall(pattern, response.content.decode())))
    return [query["sql"] for query in queries.captured_queries], shown


def _differences(few: list[str], many: list[str]) -> str:
    """The statements (numbers masked) run more often with more objects, and how often."""
    shape = partial(re.sub, r"\d+", "N")
    before, after = Counter(map(shape, few)), Counter(map(shape, many))
    return "\n".join(
        f"{before[sql]} -> {count} times: {sql[:300]}"
        for sql, count in after.items()
        if count > before[sql]
    )


@pytest.mark.parametrize("kind", ["agents", "workflows", "decisions"])
def test_lists_cost_the_same_queries_for_10_and_for_500_objects(demo_people, teams, kind):
    """Each list page and API list of `kind`, as each persona: the objects are made once, the
    lists read at 10 and again at 500."""
    volume = Volume(demo_people, teams)
    clients = {}
    for persona in PERSONAS:
        clients[persona] = Client()
        clients[persona].force_login(demo_people[persona])
    cases = [(url, persona) for url, (k, _) in LISTS.items() if k == kind for persona in PERSONAS]
    volume.grow_to(kind, FEW)
    for url, persona in cases:
        clients[persona].get(url)  # anything done once per process (content types, resolvers)
    few = {(url, p): measure(clients[p], url, LISTS[url][1]) for url, p in cases}
    volume.grow_to(kind, MANY)
    many = {(url, p): measure(clients[p], url, LISTS[url][1]) for url, p in cases}
    for case in cases:
        assert many[case][1] > few[case][1] > 0, f"{case}: more objects must show more rows"
    grown = [
        f"{url} as {persona}: {len(few[url, persona][0])} queries for {FEW} objects, "
        f"{len(many[url, persona][0])} for {MANY}; the statements that grew:\n"
        + _differences(few[url, persona][0], many[url, persona][0])
        for url, persona in cases
        if len(many[url, persona][0]) != len(few[url, persona][0])
    ]
    assert not grown, "\n\n".join(grown)


def test_the_builder_sees_their_teams_and_their_grants_and_nothing_else(client, demo_people, teams):
    """What the counts above measure is the restricted list: a quarter of the objects stays
    hidden from the builder."""
    volume = Volume(demo_people, teams)
    volume.grow_to("agents", 40)
    visible = set(
        Agent.objects.restrict(demo_people["builder"], "view").values_list("slug", flat=True)
    )
    assert visible == {f"agents-{n:04}" for n in range(40) if n % 4 != 3}
