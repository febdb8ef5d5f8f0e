"""The permission matrix: every URL of the project x persona x object of team A / team B.

The URL list is read from the resolver, so a new URL without a row here fails
`test_every_url_has_a_row`. Who may do what is written out by hand in ACCESS (the role defaults
of issue 5: builders view and change their team's objects, approvers publish, operators run,
compliance officers view everything, admins do everything), independently of the code under
test. A cell passes when:

- allowed: the request got past the permission check (any status but 401/403/404 and the
  sign-in redirect; a 400 for an empty form counts, the check came first);
- visible but not allowed: 403 or 404 (the person knows the object exists);
- not visible: exactly 404, never a 403 that would confirm the object exists;
- anonymous: the sign-in redirect for pages, 401/403 for the API.

Each request runs in a savepoint that is rolled back, so cells cannot disturb each other.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

from agents import connections, versions
from agents.engine import runs
from agents.models import Agent, Connection, Escalation, Run, Workflow
from governance.models import DecisionRecord, ExportJob, Team
from tests.support.engine import drain
from tests.support.operate import keep_test_connection

pytestmark = pytest.mark.django_db

PERSONAS = ("anonymous", "builder", "builder2", "approver", "operator", "compliance", "admin")
TEAMS = {"A": "Onboarding", "B": "Support"}

# What each persona may do, by kind of object and owning team. "*" = both teams.
_BUILDER = {
    "agent": {"view", "change"},
    "workflow": {"view", "change"},
    "connection": {"view", "use", "change"},
    "run": {"view"},
    "escalation": {"view", "resolve"},  # the human tasks of their team
    "decision": {"view"},
}
ACCESS: dict[str, dict[tuple[str, str], set[str]]] = {
    "anonymous": {},
    "builder": {(kind, "A"): actions for kind, actions in _BUILDER.items()},
    "builder2": {(kind, "B"): actions for kind, actions in _BUILDER.items()},
    "approver": {
        (kind, team): actions
        for team in "AB"
        for kind, actions in {
            "agent": {"view", "publish"},
            "workflow": {"view", "publish"},
            "connection": {"view"},
            "run": {"view"},
            "escalation": {"view", "resolve"},
            "decision": {"view"},
        }.items()
    },
    "operator": {
        (kind, team): actions
        for team in "AB"
        for kind, actions in {
            "agent": {"view"},
            "workflow": {"view", "run"},
            "connection": {"view"},
            "run": {"view", "run"},
            "escalation": {"view", "resolve"},
            "decision": {"view"},
        }.items()
    },
    "compliance": {
        (kind, team): {"view"}
        for team in "AB"
        for kind in ("agent", "workflow", "connection", "run", "escalation", "decision")
    },
    "admin": {
        (kind, team): {"view", "change", "use", "publish", "run", "resolve", "manage_access"}
        for team in "AB"
        for kind in ("agent", "workflow", "connection", "run", "escalation", "decision")
    },
}
ACCESS["compliance"][("export", "A")] = {"view"}
ACCESS["admin"][("export", "A")] = {"view"}

# url name -> (kind of object or None, the action it needs, HTTP method).
# For object URLs the kind decides the argument; global URLs need the action as a role check:
# "page" (any signed-in person), "review" (compliance and admins), "admin" (admins),
# "create:<kind>" (builders and admins), "public" (no sign-in).
OBJECT_URLS = {
    "agent-detail": ("agent", "view", "get"),
    "agent-edit": ("agent", "change", "get"),
    "agent-try": ("agent", "change", "post"),
    "agent-submit": ("agent", "change", "post"),
    "agent-withdraw": ("agent", "change", "post"),
    "agent-review": ("agent", "publish", "get"),
    "agent-history": ("agent", "view", "get"),
    "agent-version": ("agent", "view", "get"),
    "agent-rollback": ("agent", "change", "post"),
    "workflow-detail": ("workflow", "view", "get"),
    "workflow-edit": ("workflow", "change", "get"),
    "workflow-submit": ("workflow", "change", "post"),
    "workflow-withdraw": ("workflow", "change", "post"),
    "workflow-review": ("workflow", "publish", "get"),
    "workflow-history": ("workflow", "view", "get"),
    "workflow-version": ("workflow", "view", "get"),
    "workflow-rollback": ("workflow", "change", "post"),
    "workflow-run": ("workflow", "run", "get"),
    "workflow-webhook": ("workflow", "change", "get"),
    "connection-detail": ("connection", "view", "get"),
    "connection-edit": ("connection", "change", "get"),
    "connection-test": ("connection", "use", "post"),
    "run-detail": ("run", "view", "get"),
    "run-cancel": ("run", "run", "post"),
    "escalation-detail": ("escalation", "view", "get"),
    "escalation-resolve": ("escalation", "resolve", "post"),
    "decision-detail": ("decision", "view", "get"),
    "decision-export-job": ("export", "view", "get"),
    "decision-export-download": ("export", "view", "get"),
    "object-access": ("agent", "view", "get"),
    "object-revoke": ("agent", "manage_access", "post"),
    "api-agent-detail": ("agent", "view", "get"),
    "api-agent-approve": ("agent", "publish", "post"),
    "api-agent-reject": ("agent", "publish", "post"),
    "api-agent-diff": ("agent", "view", "get"),
    "api-agent-rollback": ("agent", "change", "post"),
    "api-agent-submit": ("agent", "change", "post"),
    "api-agent-withdraw": ("agent", "change", "post"),
    "api-agent-try": ("agent", "change", "post"),
    "api-agent-versions": ("agent", "view", "get"),
    "api-agents-grants": ("agent", "view", "get"),
    "api-workflow-detail": ("workflow", "view", "get"),
    "api-workflow-approve": ("workflow", "publish", "post"),
    "api-workflow-reject": ("workflow", "publish", "post"),
    "api-workflow-diff": ("workflow", "view", "get"),
    "api-workflow-diagram": ("workflow", "view", "get"),
    "api-workflow-rollback": ("workflow", "change", "post"),
    "api-workflow-submit": ("workflow", "change", "post"),
    "api-workflow-withdraw": ("workflow", "change", "post"),
    "api-workflow-versions": ("workflow", "view", "get"),
    "api-workflow-runs": ("workflow", "run", "post"),
    "api-workflows-grants": ("workflow", "view", "get"),
    "api-connection-detail": ("connection", "view", "get"),
    "api-connection-test": ("connection", "use", "post"),
    "api-connections-grants": ("connection", "view", "get"),
    "api-run-detail": ("run", "view", "get"),
    "api-run-cancel": ("run", "run", "post"),
    "api-escalation-detail": ("escalation", "view", "get"),
    "api-escalation-resolve": ("escalation", "resolve", "post"),
    "api-decision-detail": ("decision", "view", "get"),
}
GLOBAL_URLS = {
    "home": "page",
    "password_change": "page",
    "password_change_done": "page",
    "login": "public",
    "logout": "logout",
    "healthz": "public",
    "readyz": "public",
    "webhook-receive": "public",
    "agent-list": "page",
    "workflow-list": "page",
    "connection-list": "page",
    "run-list": "page",
    "run-new": "page",
    "escalation-list": "page",
    "escalation-count": "page",
    "decision-list": "page",
    "decision-export": "page",
    "agent-create": "create",
    "workflow-create": "create",
    "connection-create": "create",
    "access-review": "review",
    "access-review-csv": "review",
    "access-review-signoff": "review",
    "api-root": "api",
    "api-schema": "page",
    "api-docs": "page",
    "api-agent-list": "api",
    "api-workflow-list": "api",
    "api-connection-list": "api",
    "api-run-list": "api",
    "api-escalation-list": "api",
    "api-decision-list": "api",
}
ADMIN_SITE = "admin:"  # Django's admin: admins only, checked on its index page below


def url_names() -> set[str]:
    names = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                if "format" in str(pattern.pattern):
                    continue  # DRF's ".json" suffix twins of the same views
                names.add(f"{namespace}:{pattern.name}" if namespace else str(pattern.name))

    walk(get_resolver().url_patterns)
    return names


def test_every_url_has_a_row():
    missing = sorted(
        name
        for name in url_names()
        if name not in OBJECT_URLS and name not in GLOBAL_URLS and not name.startswith(ADMIN_SITE)
    )
    assert not missing, f"URLs without a row in the permission matrix: {missing}"


# --- The objects of team A and team B ------------------------------------------------------
@pytest.fixture
def request_cleanup():
    files = []
    yield files.append
    for path in files:
        path.unlink(missing_ok=True)


@pytest.fixture
def world(demo_people, monkeypatch, request_cleanup):
    keep_test_connection(monkeypatch)
    objects = {}
    for key, team_name in TEAMS.items():
        team = Team.objects.get(name=team_name)
        author = demo_people["builder" if key == "A" else "builder2"]
        approver = demo_people["approver"]
        agent = versions.create(
            versions.AGENT,
            actor=author,
            name=f"Review {key}",
            team=team,
            definition={
                "kind": "human",
                "input_fields": [{"name": "customer_id", "type": "text"}],
                "output_fields": [{"name": "ok", "type": "boolean"}],
                "config": {"team_id": team.pk, "instructions": "Check the file."},
            },
        )
        versions.submit(agent, actor=author)
        versions.approve(agent, actor=approver, number=1)
        flow = versions.create(
            versions.WORKFLOW,
            actor=author,
            name=f"Flow {key}",
            team=team,
            definition={
                "input_fields": [{"name": "customer_id", "type": "text"}],
                "pattern": "sequential",
                "steps": [{"key": "review", "agent_id": agent.pk}],
                "triggers": [{"type": "webhook", "run_as": "operator"}],
            },
        )
        versions.submit(flow, actor=author)
        versions.approve(flow, actor=approver, number=1)
        flow.refresh_from_db()
        run = drain(
            runs.start(
                flow.published_version,
                {"customer_id": f"C-{key}"},
                actor=demo_people["operator"],
                trigger=Run.Trigger.MANUAL,
            )
        )
        connection = connections.create(
            actor=demo_people["admin"],
            team=team,
            kind=Connection.Kind.HTTP,
            name=f"CRM {key}",
            base_url="https://crm.example.com/api",
        )
        objects[key] = {
            "agent": Agent.objects.get(pk=agent.pk),
            "workflow": Workflow.objects.get(pk=flow.pk),
            "connection": connection,
            "run": run,
            "escalation": Escalation.objects.get(run=run),
            "decision": DecisionRecord.objects.filter(run_id=str(run.pk)).order_by("seq").first(),
        }
    from governance.exports import jobs

    export_file = jobs.export_dir() / f"matrix-{uuid.uuid4().hex}.csv"
    export_file.parent.mkdir(parents=True, exist_ok=True)
    export_file.write_text("seq\n")
    request_cleanup(export_file)
    objects["A"]["export"] = ExportJob.objects.create(
        owner=demo_people["compliance"],
        format="csv",
        filters={},
        status="done",
        file_path=str(export_file),
    )
    return objects


def path_for(name: str, obj) -> str:
    from django.urls import reverse

    kwargs = {}
    pattern = {n: p for n, p in _patterns().items()}[name]
    for arg in re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", pattern):
        key = arg[0] or arg[1]
        if key in ("pk", "seq", "job_id"):
            kwargs[key] = obj.pk
        elif key == "number":
            kwargs[key] = 1
        elif key == "label":
            kwargs[key] = "agents.agent"
    return reverse(name, kwargs=kwargs)


def _patterns() -> dict[str, str]:
    found = {}

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns)
            elif "format" not in str(pattern.pattern):
                found.setdefault(str(pattern.name), str(pattern.pattern))

    walk(get_resolver().url_patterns)
    return found


def request(client, method: str, path: str):
    """One request inside a savepoint that is rolled back."""
    with transaction.atomic():
        if method == "get":
            response = client.get(path)
        else:
            response = (
                client.post(path, data=json.dumps({}), content_type="application/json")
                if path.startswith("/api/")
                else client.post(path, {})
            )
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        transaction.set_rollback(True)
    return response


def outcome(response) -> str:
    status = response.status_code
    if status == 302 and "/accounts/login/" in response.get("Location", ""):
        return "sign-in"
    if status in (401, 403):
        return "refused"
    if status == 404:
        return "hidden"
    return "allowed"


def client_for(client, people, persona):
    if persona != "anonymous":
        client.force_login(people[persona])
    return client


@pytest.mark.parametrize("persona", PERSONAS)
def test_object_urls(client, demo_people, world, persona):
    client = client_for(client, demo_people, persona)
    wrong = []
    for name, (kind, action, method) in sorted(OBJECT_URLS.items()):
        for team in ("A", "B"):
            obj = world[team].get(kind)
            if obj is None:
                continue
            response = request(client, method, path_for(name, obj))
            got = outcome(response)
            held = ACCESS[persona].get((kind, team), set())
            if persona == "anonymous":
                ok = got == ("refused" if name.startswith("api-") else "sign-in")
                expected = "refused" if name.startswith("api-") else "sign-in"
            elif action in held:
                ok, expected = got == "allowed", "allowed"
            elif held:
                ok, expected = got in ("refused", "hidden"), "refused or hidden"
            else:
                ok, expected = got == "hidden", "hidden"
            if not ok:
                wrong.append(
                    f"{method.upper()} {name} team {team}: {expected}, got {response.status_code}"
                )
    assert not wrong, f"{persona}:\n" + "\n".join(wrong)


ROLE_GATES = {
    "page": set(PERSONAS) - {"anonymous"},
    "api": set(PERSONAS) - {"anonymous"},
    "create": {"builder", "builder2", "admin"},
    "review": {"compliance", "admin"},
    "logout": set(PERSONAS) - {"anonymous"},
}


@pytest.mark.parametrize("persona", PERSONAS)
def test_global_urls(client, demo_people, world, persona):
    client = client_for(client, demo_people, persona)
    wrong = []
    for name, gate in sorted(GLOBAL_URLS.items()):
        if gate == "public" or name == "logout":
            continue
        method = "post" if name == "access-review-signoff" else "get"
        response = request(client, method, path_for(name, None))
        got = outcome(response)
        if persona == "anonymous":
            expected = "refused" if name.startswith("api-") else "sign-in"
        elif persona in ROLE_GATES[gate]:
            expected = "allowed"
        else:
            expected = "refused"
        if got != expected and not (expected == "refused" and got == "hidden"):
            wrong.append(f"{name}: {expected}, got {response.status_code}")
    # Django's admin: only admins get in.
    response = request(client, "get", "/admin/")
    if (response.status_code == 200) != (persona == "admin"):
        wrong.append(f"admin:index: status {response.status_code}")
    assert not wrong, f"{persona}:\n" + "\n".join(wrong)


def test_public_urls_answer_without_sign_in(client, world):
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 200
    slug = world["A"]["workflow"].slug
    # A webhook without a valid signature is refused, never a sign-in redirect.
    assert client.post(f"/hooks/{slug}/", b"{}", content_type="application/json").status_code in (
        401,
        404,
    )


LISTS = {
    "agent-list": "agent",
    "workflow-list": "workflow",
    "connection-list": "connection",
    "run-list": "run",
    "decision-list": "decision",
}


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "anonymous"])
def test_lists_show_nothing_the_persona_may_not_see(client, demo_people, world, persona):
    client = client_for(client, demo_people, persona)
    leaks = []
    for name, kind in LISTS.items():
        html = client.get(path_for(name, None)).content.decode()
        for team in "AB":
            obj = world[team][kind]
            marker = _marker(kind, obj)
            visible = "view" in ACCESS[persona].get((kind, team), set())
            if not visible and marker in html:
                leaks.append(f"{name} shows {kind} of team {team}")
    for api, kind in (
        ("/api/v1/agents/", "agent"),
        ("/api/v1/workflows/", "workflow"),
        ("/api/v1/connections/", "connection"),
        ("/api/v1/runs/", "run"),
    ):
        body = client.get(api).content.decode()
        for team in "AB":
            obj = world[team][kind]
            visible = "view" in ACCESS[persona].get((kind, team), set())
            if not visible and _marker(kind, obj) in body:
                leaks.append(f"{api} shows {kind} of team {team}")
    assert not leaks, f"{persona}: {leaks}"


def _marker(kind: str, obj) -> str:
    if kind in ("agent", "workflow", "connection"):
        return obj.name
    if kind == "run":
        return str(obj.pk)[:8]
    return f"/decisions/{obj.pk}/"
