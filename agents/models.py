"""What builders define (connections, agents, workflows and their versions) and what runs.

Definitions are versioned: the editable draft, a submitted version frozen for review, and
published versions that nothing may change (a database trigger refuses it: migration 0002).
Each model answers `objects.restrict(user, action)` (governance.permissions) and has its own
guardian grant tables (direct foreign keys, never the generic ones).
"""

from __future__ import annotations

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
