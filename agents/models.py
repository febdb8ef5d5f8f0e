"""What builders define (connections, agents, workflows and their versions) and what runs.

Definitions are versioned: the editable draft, a submitted version frozen for review, and
published versions that nothing may change (a database trigger refuses it: migration 0002).
Each model answers `objects.restrict(user, action)` (governance.permissions) and has its own
guardian grant tables (direct foreign keys, never the generic ones).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from governance.models import Team
from governance.permissions import RestrictedQuerySet


class Connection(models.Model):
    class Kind(models.TextChoices):
        MODEL = "model", "Model endpoint (OpenAI-compatible)"
        HTTP = "http", "HTTP endpoint"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        BEARER = "bearer", "Bearer token"
        API_KEY_HEADER = "api_key_header", "API key header"
        BASIC = "basic", "Basic (user and password)"
        OAUTH2 = "oauth2_client_credentials", "OAuth2 client credentials"

    ACTIONS = ("view", "use", "change", "manage_access")
    owner_team_field = "team"

    name = models.CharField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="connections")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    description = models.TextField(blank=True)
    base_url = models.URLField(max_length=500)
    auth_method = models.CharField(max_length=32, choices=Auth.choices, default=Auth.NONE)
    header_name = models.CharField(max_length=100, blank=True)
    username = models.CharField(max_length=200, blank=True)
    token_url = models.URLField(max_length=500, blank=True)
    model = models.CharField(max_length=200, blank=True)
    # Fernet ciphertext of the secret (governance.keys); never rendered, logged or exported.
    encrypted_secret = models.BinaryField(null=True, editable=False)
    allow_internal = models.BooleanField(
        default=False, help_text="May reach private and loopback addresses (admins only)."
    )
    timeout_seconds = models.FloatField(default=30.0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        default_permissions = ("view", "change")
        permissions = [
            ("use_connection", "Use the connection in agents"),
            ("manage_access_connection", "Grant and revoke access to the connection"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("connection-detail", args=[self.pk])

    @property
    def has_secret(self) -> bool:
        return bool(self.encrypted_secret)

    @staticmethod
    def grant_models():
        return ConnectionUserGrant, ConnectionGroupGrant


class Definition(models.Model):
    """What agents and workflows share: a name, an owning team and a published version."""

    ACTIONS: tuple[str, ...] = ()
    owner_team_field = "team"

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Agent(Definition):
    class Kind(models.TextChoices):
        RULES = "rules", "Decision table"
        LLM = "llm", "LLM prompt"
        HTTP = "http", "HTTP integration"
        HUMAN = "human", "Human step"

    ACTIONS = ("view", "change", "publish", "manage_access")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    published_version = models.OneToOneField(
        "AgentVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta(Definition.Meta):
        default_permissions = ("view", "change")
        permissions = [
            ("publish_agent", "Approve or reject the agent's versions"),
            ("manage_access_agent", "Grant and revoke access to the agent"),
        ]

    def get_absolute_url(self) -> str:
        return reverse("agent-detail", args=[self.pk])

    @staticmethod
    def grant_models():
        return AgentUserGrant, AgentGroupGrant


class Workflow(Definition):
    ACTIONS = ("view", "change", "run", "publish", "manage_access")

    published_version = models.OneToOneField(
        "WorkflowVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Fernet ciphertext of the webhook signing secret (agents.engine.triggers); shown once.
    webhook_secret = models.BinaryField(null=True, editable=False)

    class Meta(Definition.Meta):
        default_permissions = ("view", "change")
        permissions = [
            ("run_workflow", "Start runs of the workflow and resolve its escalations"),
            ("publish_workflow", "Approve or reject the workflow's versions"),
            ("manage_access_workflow", "Grant and revoke access to the workflow"),
        ]

    def get_absolute_url(self) -> str:
        return reverse("workflow-detail", args=[self.pk])

    @staticmethod
    def grant_models():
        return WorkflowUserGrant, WorkflowGroupGrant


class VersionStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    PUBLISHED = "published", "Published"
    REJECTED = "rejected", "Rejected"


class Version(models.Model):
    """A numbered version of a definition. Drafts change; everything else is frozen."""

    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=VersionStatus.choices)
    definition = models.JSONField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    submit_note = models.TextField(blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_reason = models.TextField(blank=True)
    rollback_of = models.PositiveIntegerField(
        null=True, blank=True, help_text="The earlier version this one republishes."
    )

    class Meta:
        abstract = True
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"v{self.number} ({self.get_status_display()})"

    @property
    def is_frozen(self) -> bool:
        return self.status != VersionStatus.DRAFT


class AgentVersion(Version):
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="versions")

    class Meta(Version.Meta):
        constraints = [
            models.UniqueConstraint(fields=["agent", "number"], name="agentversion_number"),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(status="draft"), name="agentversion_one_draft"
            ),
            models.UniqueConstraint(
                fields=["agent"], condition=Q(status="submitted"), name="agentversion_one_review"
            ),
        ]


class WorkflowVersion(Version):
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="versions")

    class Meta(Version.Meta):
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="workflowversion_number"),
            models.UniqueConstraint(
                fields=["workflow"], condition=Q(status="draft"), name="workflowversion_one_draft"
            ),
            models.UniqueConstraint(
                fields=["workflow"],
                condition=Q(status="submitted"),
                name="workflowversion_one_review",
            ),
        ]


# Grants: guardian's direct foreign-key tables (one query per list; never the generic ones).
class ConnectionUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Connection, on_delete=models.CASCADE)


class ConnectionGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Connection, on_delete=models.CASCADE)


class AgentUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)


class AgentGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Agent, on_delete=models.CASCADE)


class WorkflowUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class WorkflowGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


# --- What runs -------------------------------------------------------------------------------
class RunQuerySet(models.QuerySet):
    """Runs follow their workflow: visible to whoever may view it; `run` to operate them."""

    def restrict(self, user, action: str = "view"):
        workflow_action = "run" if action in ("run", "resolve") else "view"
        return self.filter(
            workflow__in=Workflow.objects.restrict(user, workflow_action).values("pk")
        )


class Run(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        WAITING = "waiting", "Waiting for a person"
        FINISHED = "finished", "Finished"

    class Outcome(models.TextChoices):
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected by a person"
        CANCELLED = "cancelled", "Cancelled"

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started from the console"
        API = "api", "Started through the API"
        WEBHOOK = "webhook", "Webhook"
        SCHEDULE = "schedule", "Schedule"
        WORKFLOW = "workflow", "Another workflow's outcome"
        DEMO = "demo", "Demo data"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    workflow_version = models.ForeignKey(
        WorkflowVersion, on_delete=models.PROTECT, related_name="runs"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    trigger_detail = models.JSONField(default=dict, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)  # pattern state: rounds, transcript
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="run_status_created")]

    def __str__(self) -> str:
        return f"run {str(self.pk)[:8]} of {self.workflow}"

    def get_absolute_url(self) -> str:
        return reverse("run-detail", args=[self.pk])

    @property
    def short_id(self) -> str:
        return str(self.pk)[:8]


class StepRunQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view"):
        return self.filter(run__in=Run.objects.restrict(user, action).values("pk"))


class StepRun(models.Model):
    """One attempt of one activation of one step: the unit a Celery task executes.

    (run, step_key, activation, attempt) is unique, so a repeated delivery of the same task
    finds its row already claimed or finished and changes nothing. `activation` counts loop
    iterations (maker-checker rounds, conversation turns, the supervisor's second call)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        RETRYING = "retrying", "Failed, retry scheduled"
        ESCALATED = "escalated", "Escalated"
        WAITING = "waiting", "Waiting for a person"
        RESOLVED = "resolved", "Resolved by a person"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="steps")
    step_key = models.CharField(max_length=40)
    activation = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    agent = models.ForeignKey(Agent, on_delete=models.PROTECT, related_name="+")
    agent_version = models.ForeignKey(AgentVersion, on_delete=models.PROTECT, related_name="+")
    input = models.JSONField(default=dict)
    output = models.JSONField(null=True, blank=True)
    decision = models.CharField(max_length=200, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    error = models.JSONField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)  # retry backoff
    lease_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    decision_seq = models.BigIntegerField(null=True, blank=True)  # the agent.decided record

    objects = StepRunQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_key", "activation", "attempt"], name="steprun_attempt"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="steprun_status_lease"),
            models.Index(fields=["status", "not_before"], name="steprun_status_not_before"),
        ]

    def __str__(self) -> str:
        return f"{self.step_key}#{self.activation}.{self.attempt} ({self.status})"


class EscalationQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "view"):
        """`view`: escalations of visible workflows. `resolve`: those the user may resolve —
        holders of run or publish on the workflow, and for human tasks the answering team."""
        if action == "view":
            return self.filter(run__in=Run.objects.restrict(user, "view").values("pk"))
        if action != "resolve":
            raise ValueError(f"Escalation has no action {action!r}")
        may_operate = Workflow.objects.restrict(user, "run").values("pk")
        may_publish = Workflow.objects.restrict(user, "publish").values("pk")
        condition = Q(run__workflow__in=may_operate) | Q(run__workflow__in=may_publish)
        if getattr(user, "is_authenticated", False):
            condition |= Q(kind="human_task", team__in=Team.objects.of_user(user).values("pk"))
        return self.filter(condition)


class Escalation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RESOLVED = "resolved", "Resolved"
        CANCELLED = "cancelled", "Cancelled"

    run = models.ForeignKey(Run, on_delete=models.PROTECT, related_name="escalations")
    step_run = models.OneToOneField(StepRun, on_delete=models.PROTECT, related_name="escalation")
    kind = models.CharField(max_length=32)  # taxonomy kind, or human_task
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    summary = models.CharField(max_length=300)
    context = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolution = models.JSONField(null=True, blank=True)

    objects = EscalationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"], name="escalation_status_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} in {self.run}"

    def get_absolute_url(self) -> str:
        return reverse("escalation-detail", args=[self.pk])

    def get_kind_display(self) -> str:
        return ESCALATION_KINDS.get(self.kind, self.kind)


ESCALATION_KINDS = {
    "system_unavailable": "System unavailable",
    "data_missing": "Data missing",
    "handoff_error": "Handoff error",
    "rule_conflict": "Rule conflict",
    "out_of_scope": "Out of scope",
    "low_confidence": "Low confidence",
    "round_limit": "Round limit reached",
    "turn_limit": "Turn limit reached",
    "human_task": "Task for a person",
}


class WebhookDelivery(models.Model):
    """A webhook signature already used: the same signed request is never accepted twice."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="+")
    signature = models.CharField(max_length=64, unique=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"webhook delivery {self.signature[:12]}"
