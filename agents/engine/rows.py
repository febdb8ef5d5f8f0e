"""Hand-written reads of the engine's hot path, returning ordinary model instances.

Every step attempt reads and locks its run and step, reads the run's step results and the next
step's agent version. Through the ORM each of these cost 1-3 ms of query compilation, more than
PostgreSQL took to answer (bench/engine.py); here the SQL is written once per process and rows
become models exactly as the ORM makes them (the same database and field converters, then
`Model.from_db`).
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from agents.models import Agent, AgentVersion, Run, StepRun, Workflow, WorkflowVersion
from governance.models import Team, User


class Columns:
    """A model's concrete columns under a table alias, and how to turn them into an instance."""

    def __init__(self, model, alias: str):
        self.model = model
        self.fields = model._meta.concrete_fields
        self.sql = ", ".join(f'{alias}."{field.column}"' for field in self.fields)
        self.width = len(self.fields)

    def converters(self, conn) -> list[tuple[int, list, object]]:
        return _converters(self.model, conn.vendor)

    def build(self, row, offset: int = 0, conn=None):
        conn = conn or connection
        values = list(row[offset : offset + self.width])
        for index, functions, expression in self.converters(conn):
            value = values[index]
            for function in functions:
                value = function(value, expression, conn)
            values[index] = value
        return self.model.from_db(conn.alias, None, values)


@cache
def _converters(model, vendor: str) -> list[tuple[int, list, object]]:
    """What the ORM's compiler applies to each column (SQLite's datetimes, JSON decoding...)."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            found.append((index, functions, column))
    return found


RUN, WORKFLOW, WORKFLOW_VERSION, TEAM = (
    Columns(Run, "r"),
    Columns(Workflow, "w"),
    Columns(WorkflowVersion, "wv"),
    Columns(Team, "t"),
)
STEP, AGENT, AGENT_VERSION = Columns(StepRun, "s"), Columns(Agent, "a"), Columns(AgentVersion, "av")
USER = Columns(User, "u")


@cache
def _statements(vendor: str) -> dict[str, str]:
    """The hot path's statements, from the models' own column lists (no user input)."""
    lock = connection.features.has_select_for_update_of

    def of(alias: str) -> str:
        return f" FOR UPDATE OF {alias}" if lock else ""

    statements = {
        "run": f"""
            SELECT {RUN.sql}, {WORKFLOW.sql}, {WORKFLOW_VERSION.sql}, {TEAM.sql}
            FROM "agents_run" r
            JOIN "agents_workflow" w ON w."id" = r."workflow_id"
            JOIN "agents_workflowversion" wv ON wv."id" = r."workflow_version_id"
            JOIN "governance_team" t ON t."id" = r."team_id"
            WHERE r."id" = (SELECT "run_id" FROM "agents_steprun" WHERE "id" = %s){of("r")}
        """,  # noqa: S608
        "step": f"""
            SELECT {STEP.sql}, {AGENT.sql}, {AGENT_VERSION.sql}
            FROM "agents_steprun" s
            JOIN "agents_agent" a ON a."id" = s."agent_id"
            JOIN "agents_agentversion" av ON av."id" = s."agent_version_id"
            WHERE s."id" = %s{of("s")}
        """,  # noqa: S608
        "agent_version": f"""
            SELECT {AGENT_VERSION.sql}, {AGENT.sql}
            FROM "agents_agentversion" av JOIN "agents_agent" a ON a."id" = av."agent_id"
            WHERE av."agent_id" = %s AND av."number" = %s
        """,  # noqa: S608
        **{
            f"workflow_by_{column}": f"""
                SELECT {WORKFLOW.sql}, {TEAM.sql}, {WORKFLOW_VERSION.sql}
                FROM "agents_workflow" w
                JOIN "governance_team" t ON t."id" = w."team_id"
                LEFT JOIN "agents_workflowversion" wv ON wv."id" = w."published_version_id"
                WHERE w."{column}" = %s
            """  # noqa: S608
            for column in ("id", "slug")
        },
        "active_user": f"""
            SELECT {USER.sql} FROM "{User._meta.db_table}" u
            WHERE u."username" = %s AND u."is_active"
        """,  # noqa: S608
    }
    return {name: " ".join(sql.split()) for name, sql in statements.items()}  # one line in logs


def lock_step(step_run_id: int) -> tuple[Run, StepRun] | None:
    """Lock the step's run, then the step (the order every writer of a run's rows takes), each
    with what the engine reads of it: the run's workflow, version and team, the step's agent
    and agent version."""
    with connection.cursor() as cursor:
        statements = _statements(connection.vendor)
        cursor.execute(statements["run"], [step_run_id])
        row = cursor.fetchone()
        if row is None:
            return None
        run = RUN.build(row)
        offset = RUN.width
        run.workflow = WORKFLOW.build(row, offset)
        offset += WORKFLOW.width
        run.workflow_version = WORKFLOW_VERSION.build(row, offset)
        run.team = TEAM.build(row, offset + WORKFLOW_VERSION.width)
        cursor.execute(statements["step"], [step_run_id])
        row = cursor.fetchone()
    step_run = STEP.build(row)
    step_run.run = run
    step_run.agent = AGENT.build(row, STEP.width)
    step_run.agent_version = AGENT_VERSION.build(row, STEP.width + AGENT.width)
    step_run.agent_version.agent = step_run.agent  # the spec names it: no query of its own
    return run, step_run


def agent_version(agent_id: int, number: int) -> AgentVersion:
    """The agent version a workflow step names, with its agent."""
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)["agent_version"], [agent_id, number])
        row = cursor.fetchone()
    if row is None:
        raise AgentVersion.DoesNotExist(f"agent {agent_id} has no version {number}")
    version = AGENT_VERSION.build(row)
    version.agent = AGENT.build(row, AGENT_VERSION.width)
    return version


def workflow_by_slug(slug: str) -> Workflow | None:
    """The workflow with this slug, its team and published version (None if unpublished)."""
    return _workflow("slug", slug)


def workflow_by_id(pk) -> Workflow | None:
    """The workflow with this id, its team and published version (None if unpublished)."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return _workflow("id", pk)


def _workflow(column: str, value) -> Workflow | None:
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)[f"workflow_by_{column}"], [value])
        row = cursor.fetchone()
    if row is None:
        return None
    workflow = WORKFLOW.build(row)
    workflow.team = TEAM.build(row, WORKFLOW.width)
    offset = WORKFLOW.width + TEAM.width
    if workflow.published_version_id is None:
        workflow.published_version = None
    else:
        workflow.published_version = WORKFLOW_VERSION.build(row, offset)
        workflow.published_version.workflow = workflow
    return workflow


def active_user(username: str) -> User | None:
    with connection.cursor() as cursor:
        cursor.execute(_statements(connection.vendor)["active_user"], [username])
        row = cursor.fetchone()
    return None if row is None else USER.build(row)


def step_results(run_id) -> list[tuple]:
    """(status, step_key, output, decision, confidence, rationale) of every step run of the run,
    in activation and attempt order."""
    output = STEP.fields.index(StepRun._meta.get_field("output"))
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT s."status", s."step_key", s."output", s."decision", s."confidence", '
            's."rationale" FROM "agents_steprun" s WHERE s."run_id" = %s '
            'ORDER BY s."activation", s."attempt", s."id"',
            [Run._meta.pk.get_db_prep_value(run_id, connection)],  # SQLite keeps UUIDs as text
        )
        rows = cursor.fetchall()
    _, functions, expression = next(c for c in STEP.converters(connection) if c[0] == output)
    results = []
    for status, key, value, decision, confidence, rationale in rows:
        for function in functions:
            value = function(value, expression, connection)
        results.append((status, key, value, decision, confidence, rationale))
    return results


def set_decision_seq(step_run_id: int, seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            'UPDATE "agents_steprun" SET "decision_seq" = %s WHERE "id" = %s', [seq, step_run_id]
        )


# --- Writes -----------------------------------------------------------------------------------
# What `save(update_fields=...)` and `objects.create()` do for the engine's rows (the same
# pre_save and database preparation of each value; these models have no save signals or
# overridden save), without compiling the statement anew each time.


def _prepared(field, instance, *, add: bool):
    return field.get_db_prep_save(field.pre_save(instance, add), connection)


@cache
def _update_sql(model, names: tuple[str, ...], vendor: str) -> tuple[str, list]:
    meta = model._meta
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f'"{field.column}" = %s' for field in fields)
    sql = f'UPDATE "{meta.db_table}" SET {assignments} WHERE "{meta.pk.column}" = %s'  # noqa: S608
    return sql, fields


def update(instance, names: list[str]) -> None:
    """Write these fields of an instance loaded from the database to its row."""
    sql, fields = _update_sql(type(instance), tuple(names), connection.vendor)
    values = [_prepared(field, instance, add=False) for field in fields]
    values.append(type(instance)._meta.pk.get_db_prep_value(instance.pk, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


@cache
def _insert_sql(model, vendor: str) -> tuple[str, list, bool]:
    meta = model._meta
    generated = meta.auto_field is not None and meta.pk is meta.auto_field
    fields = [f for f in meta.concrete_fields if not (generated and f is meta.pk)]
    returning = generated and connection.features.can_return_columns_from_insert
    columns = ", ".join(f'"{field.column}"' for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    sql = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({placeholders})'  # noqa: S608
    if returning:
        sql += f' RETURNING "{meta.pk.column}"'
    return sql, fields, generated


def create(model, **values):
    """`model.objects.create(**values)`: the instance, saved, its generated key set."""
    instance = model(**values)
    sql, fields, generated = _insert_sql(model, connection.vendor)
    params = [_prepared(field, instance, add=True) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if generated:
            if connection.features.can_return_columns_from_insert:
                instance.pk = cursor.fetchone()[0]
            else:
                instance.pk = connection.ops.last_insert_id(
                    cursor, model._meta.db_table, model._meta.pk.column
                )
    instance._state.adding = False
    instance._state.db = connection.alias
    return instance
