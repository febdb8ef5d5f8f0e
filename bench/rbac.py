"""Object permissions at scale (issue 5): the agent list page and API for a builder with grants,
next to the same page and API for a superuser (no permission filter), on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/steward python bench/rbac.py

Runs on `<DATABASE_URL name>_bench_rbac` (bench/_common.py), filled once and reused by later
runs (a comment on the database marks it filled; a database without the current marker is
dropped and filled anew). The fill is fixture data written fast (bulk_create and COPY, not the
services, no ledger records), but real rows in the real tables: 50 teams with their auth
groups, 1,000 users in them (mostly builders, some operators and approvers), 10,000 agents
with valid versions (published, drafts, versions under review), and 100,000 object grants in
guardian's direct tables (user and team grants, every agent permission). One builder holds
grants on 2 % of the agents (200: user grants and grants to their team) outside the 200 their
own team owns.

Figures, each through the whole Django stack (django.test.Client signed in with force_login,
over HTTPS), requests of the four kinds interleaved, after a warm-up; BENCH_RBAC_REQUESTS
rounds (100).

Settings are production's: DEBUG off, as Steward is deployed (DEBUG on renders templates with
debug information and logs every query, which no user waits for), with what
console/settings.py then requires made up for the run (a random SECRET_KEY, a fresh Fernet
STEWARD_ENCRYPTION_KEY and Ed25519 STEWARD_SIGNING_KEY, ALLOWED_HOSTS=localhost, static files
collected for the manifest storage into a temporary STEWARD_VAR_DIR). DEBUG=true in the
environment measures the development settings instead; the output names DEBUG either way.

- `rbac_agent_list_page_p95_ms` (and `_p50_`): GET /agents/ as the builder; baseline: the same
  page as the superuser. Both see the first page of 50 (of 410 and of 10,000 agents).
- `rbac_agent_api_p95_ms` (and `_p50_`): GET /api/v1/agents/ (first cursor page) as the
  builder; baseline: the same as the superuser.
- `rbac_agent_list_page_queries`, `rbac_agent_api_queries`: queries per request, builder;
  baseline: superuser.
- `rbac_restricted_agents_db_ms`: PostgreSQL's execution time (EXPLAIN ANALYZE, median) of
  `Agent.objects.restrict(builder, "view")` in full; baseline: the superuser's unrestricted
  queryset, first 500 rows by name (so the row counts are alike). `rbac_api_page_db_ms`: the
  API's first page query as the request sent it, builder; baseline: superuser.

Targets: p95 <= 50 ms, ratio <= 2, a constant number of queries (tests/unit/test_query_counts.py
proves the constancy for 10 and 500 objects). Plans are printed as `#` lines.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from _common import bench_line, production_settings, setup_django

SUFFIX = "_bench_rbac"
TEAMS = 50
USERS = 1_000
AGENTS = 10_000
GRANTS = 100_000
BUILDER_GRANTED = AGENTS * 2 // 100  # 2 %: 200 agents outside the builder's team
BUILDER_TEAM_GRANTED = 50  # of those, granted to the builder's team rather than to them
REQUESTS = int(os.environ.get("BENCH_RBAC_REQUESTS", "100"))
WARMUP = 10
DB_RUNS = 25
BUILDER = "bench-builder"
SUPERUSER = "bench-admin"
# Changing the fill changes the marker, so an older fill is dropped rather than reused.
MARKER = f"steward bench_rbac v1: {AGENTS} agents, {USERS} users, {TEAMS} teams, {GRANTS} grants"

RULES = {
    "kind": "rules",
    "description": "Decides the credit limit from the amount and the country",
    "input_fields": [
        {"name": "customer_id", "type": "text"},
        {"name": "amount", "type": "number"},
        {"name": "country", "type": "choice", "choices": ["DE", "FR", "US"]},
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
WORDS = [
    "credit",
    "kyc",
    "fraud",
    "limit",
    "onboarding",
    "refund",
    "claims",
    "triage",
    "pricing",
    "sanctions",
    "churn",
    "routing",
    "address",
    "income",
    "payout",
    "dispute",
    "renewal",
    "identity",
    "document",
    "screening",
]


# --- The database ------------------------------------------------------------------------------


def _bench_database() -> tuple[str, str]:
    """(admin URL, bench database name), as setup_django derives them."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("benchmarks need PostgreSQL: set DATABASE_URL=postgres://user@host:port/name")
    base, _, name = url.rpartition("/")
    return f"{base}/postgres", name.split("?")[0] + SUFFIX


def _marker(admin_url: str, name: str) -> str | None:
    """The comment on the bench database (the fill's marker), None when there is none."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        ).fetchone()
    return row[0] if row else None


def _copy(table: str, columns: tuple[str, ...], rows) -> None:
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def fill(database: str) -> None:
    """Teams, users, agents with versions and grants, in one transaction, marker included.

    (A comment on a database that does not exist is only a warning: `database` is the name
    worked out before setup_django changed DATABASE_URL.)"""
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from django.utils.text import slugify

    from agents.definitions import validate_agent_definition
    from agents.models import Agent, AgentGroupGrant, AgentUserGrant, AgentVersion
    from governance.models import Team, User
    from governance.permissions import codename
    from governance.roles import Role

    rng = random.Random(5)
    definition = validate_agent_definition(RULES)
    started = time.perf_counter()
    with transaction.atomic():
        groups = Group.objects.bulk_create(
            [Group(name=f"team:bench-team-{i:02d}") for i in range(TEAMS)]
        )
        teams = Team.objects.bulk_create(
            [
                Team(name=f"Bench team {i:02d}", slug=f"bench-team-{i:02d}", group=group)
                for i, group in enumerate(groups)
            ]
        )
        unusable = make_password(None)
        people = [
            User(username=f"user{n:04d}", email=f"user{n:04d}@bench.example", password=unusable)
            for n in range(USERS - 1)
        ]
        people.append(User(username=BUILDER, email="builder@bench.example", password=unusable))
        people.append(
            User(
                username=SUPERUSER,
                email="admin@bench.example",
                password=unusable,
                is_superuser=True,
                is_staff=True,
            )
        )
        people = User.objects.bulk_create(people)
        builder, superuser = people[-2], people[-1]
        members = people[:-1]  # 1,000 team members; the superuser belongs to no team
        role_groups = {role: Group.objects.get(name=role.value) for role in Role}
        team_of: dict[int, Team] = {}
        membership = []
        builders_of: dict[int, list] = {team.pk: [] for team in teams}
        approvers_of: dict[int, list] = {team.pk: [] for team in teams}
        for n, person in enumerate(members):
            team = teams[0] if person is builder else teams[n % TEAMS]
            team_of[person.pk] = team
            draw = rng.random()
            role = (
                Role.BUILDER
                if person is builder or draw < 0.7
                else Role.OPERATOR
                if draw < 0.85
                else Role.APPROVER
            )
            (builders_of if role is Role.BUILDER else approvers_of)[team.pk].append(person)
            membership += [(person.pk, team.group_id), (person.pk, role_groups[role].pk)]
        membership.append((superuser.pk, role_groups[Role.ADMIN].pk))
        _copy("governance_user_groups", ("user_id", "group_id"), membership)

        now = datetime.now(UTC)
        agents = []
        for n in range(AGENTS):
            name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {n:05d}"
            team = teams[rng.randrange(TEAMS)]
            agents.append(
                Agent(
                    name=name,
                    slug=slugify(name),
                    team=team,
                    kind="rules",
                    created_by=rng.choice(builders_of[team.pk] or members),
                )
            )
        agents = Agent.objects.bulk_create(agents, batch_size=2000)

        versions = []
        for agent in agents:
            author = agent.created_by
            reviewer = rng.choice(approvers_of[agent.team_id] or members)
            created = now - timedelta(days=rng.randrange(1, 400))
            common = {"agent": agent, "definition": definition, "author": author}
            draw = rng.random()
            first = "published" if draw < 0.85 else "draft" if draw < 0.95 else "submitted"
            reviewed = {"reviewed_by": reviewer, "reviewed_at": created + timedelta(hours=2)}
            submitted = {"submitted_by": author, "submitted_at": created + timedelta(hours=1)}
            versions.append(
                AgentVersion(
                    number=1,
                    status=first,
                    **common,
                    **(submitted if first != "draft" else {}),
                    **(reviewed if first == "published" else {}),
                )
            )
            if first == "published" and draw >= 0.70:  # a second version open on top
                second = "draft" if draw < 0.80 else "submitted"
                versions.append(
                    AgentVersion(
                        number=2,
                        status=second,
                        **common,
                        **(submitted if second == "submitted" else {}),
                    )
                )
        AgentVersion.objects.bulk_create(versions, batch_size=2000)
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE agents_agent a SET published_version_id = v.id FROM agents_agentversion v "
                "WHERE v.agent_id = a.id AND v.status = 'published'"
            )

        content_type = ContentType.objects.get_for_model(Agent)
        permission = {
            action: Permission.objects.get(
                content_type=content_type, codename=codename(action, Agent)
            ).pk
            for action in Agent.ACTIONS
        }
        actions = list(Agent.ACTIONS)
        weights = [0.5, 0.25, 0.15, 0.1]  # view, change, publish, manage_access
        # The builder: 200 agents outside their team, 150 granted to them, 50 to their team.
        outside = [a.pk for a in agents if a.team_id != teams[0].pk]
        granted = rng.sample(outside, BUILDER_GRANTED)
        user_rows = {
            (builder.pk, permission[rng.choices(actions, weights)[0]], pk)
            for pk in granted[BUILDER_TEAM_GRANTED:]
        }
        group_rows = {
            (teams[0].group_id, permission[rng.choices(actions, weights)[0]], pk)
            for pk in granted[:BUILDER_TEAM_GRANTED]
        }
        # Everyone else: a quarter team grants (never to the builder's team), the rest personal.
        others = [p.pk for p in members if p is not builder]
        other_groups = [team.group_id for team in teams[1:]]
        agent_ids = [a.pk for a in agents]
        while len(user_rows) + len(group_rows) < GRANTS:
            perm = permission[rng.choices(actions, weights)[0]]
            if rng.random() < 0.25:
                group_rows.add((rng.choice(other_groups), perm, rng.choice(agent_ids)))
            else:
                user_rows.add((rng.choice(others), perm, rng.choice(agent_ids)))
        _copy(
            AgentUserGrant._meta.db_table,
            ("user_id", "permission_id", "content_object_id"),
            sorted(user_rows),
        )
        _copy(
            AgentGroupGrant._meta.db_table,
            ("group_id", "permission_id", "content_object_id"),
            sorted(group_rows),
        )
        with connection.cursor() as cursor:
            cursor.execute(f"COMMENT ON DATABASE \"{database}\" IS '{MARKER}'")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(
        f"# filled {TEAMS} teams, {len(people)} users, {len(agents)} agents, "
        f"{len(versions)} versions, {len(user_rows)} user grants and {len(group_rows)} team "
        f"grants in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


# --- Measuring ---------------------------------------------------------------------------------


def _client(user):
    from django.test import Client

    client = Client(HTTP_HOST="localhost")  # an ALLOWED_HOSTS name whatever DEBUG is
    client.force_login(user)
    return client


def _timed_get(client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url, secure=True)  # production redirects HTTP
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _captured(client, url: str):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, secure=True)  # production redirects HTTP
    assert response.status_code == 200, (url, response.status_code)
    return response, [q["sql"] for q in queries.captured_queries]


def _plan(sql: str, params=()) -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]


def _execution_ms(sql: str, params=()) -> float:
    """PostgreSQL's execution time (median of DB_RUNS, after one warm-up)."""
    timings = [_plan(sql, params)["Execution Time"] for _ in range(DB_RUNS + 1)]
    return statistics.median(timings[1:])


def _print_plan(title: str, sql: str, params=()) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        lines = [row[0] for row in cursor.fetchall()]
    print(f"# EXPLAIN ANALYZE {title}:", flush=True)
    for line in lines:
        print(f"#   {line}", flush=True)


def _agent_query(sqls: list[str]) -> str:
    """The request's query that reads the agents themselves (the list or the page)."""
    return next(
        sql
        for sql in sqls
        if sql.lstrip().upper().startswith("SELECT") and 'FROM "agents_agent"' in sql
    )


def main() -> None:
    admin_url, database = _bench_database()  # before setup_django rewrites DATABASE_URL
    filled = _marker(admin_url, database) == MARKER
    production_settings()
    setup_django(fresh=not filled, suffix=SUFFIX)
    from django.conf import settings
    from django.core.management import call_command

    if not settings.DEBUG:  # the manifest storage serves collected, hashed files only
        call_command("collectstatic", interactive=False, verbosity=0)

    from agents.models import Agent
    from governance.models import User

    if not filled:
        fill(database)
        if _marker(admin_url, database) != MARKER:
            raise SystemExit(f"the fill did not mark {database}")
    builder = User.objects.get(username=BUILDER)
    superuser = User.objects.get(username=SUPERUSER)
    visible = Agent.objects.restrict(builder, "view").count()
    print(
        f"# {Agent.objects.count()} agents; the builder sees {visible}; DEBUG={settings.DEBUG}; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )

    page, api = "/agents/", "/api/v1/agents/"
    clients = {"builder": _client(builder), "superuser": _client(superuser)}
    cases = [(who, url) for url in (page, api) for who in clients]
    for _ in range(WARMUP):
        for who, url in cases:
            _timed_get(clients[who], url)
    timings: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    started = time.perf_counter()
    for _ in range(REQUESTS):
        for case in cases:
            timings[case].append(_timed_get(clients[case[0]], case[1]))
    print(
        f"# {REQUESTS} requests of each kind in {time.perf_counter() - started:.1f} s; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )

    captured = {case: _captured(clients[case[0]], case[1]) for case in cases}
    shown = {
        case: captured[case][0].content.decode().count('class="strong" href="/agents/')
        if case[1] == page
        else len(captured[case][0].json()["results"])
        for case in cases
    }
    sizes = {case: len(captured[case][0].content) for case in cases}
    for who, url in cases:
        print(
            f"# {who} {url}: {shown[(who, url)]} rows, {sizes[(who, url)]:,} bytes, "
            f"{len(captured[(who, url)][1])} queries",
            flush=True,
        )

    for name, url in (("rbac_agent_list_page", page), ("rbac_agent_api", api)):
        for label, q in (("p50", 0.5), ("p95", 0.95)):
            mine = _percentile(timings[("builder", url)], q)
            base = _percentile(timings[("superuser", url)], q)
            bench_line(f"{name}_{label}_ms", mine, "ms", base)
    for name, url in (("rbac_agent_list_page_queries", page), ("rbac_agent_api_queries", api)):
        mine, base = len(captured[("builder", url)][1]), len(captured[("superuser", url)][1])
        bench_line(name, mine, "queries", base)

    # Where the time goes in the database.
    restricted = Agent.objects.restrict(builder, "view")
    plain = Agent.objects.restrict(superuser, "view")[:500]
    sql, params = restricted.query.sql_with_params()
    base_sql, base_params = plain.query.sql_with_params()
    bench_line(
        "rbac_restricted_agents_db_ms",
        _execution_ms(sql, params),
        "ms",
        _execution_ms(base_sql, base_params),
    )
    api_builder = _agent_query(captured[("builder", api)][1])
    api_superuser = _agent_query(captured[("superuser", api)][1])
    bench_line(
        "rbac_api_page_db_ms", _execution_ms(api_builder), "ms", _execution_ms(api_superuser)
    )
    _print_plan('Agent.objects.restrict(builder, "view")', sql, params)
    _print_plan("the page's agent query, builder", _agent_query(captured[("builder", page)][1]))
    _print_plan("the API's first page, builder", api_builder)


if __name__ == "__main__":
    main()
