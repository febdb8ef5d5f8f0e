from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.urls import reverse


class User(AbstractUser):
    """A person who signs in to Steward. Roles are Django groups; teams are `Team` rows."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class TeamQuerySet(models.QuerySet):
    def of_user(self, user) -> TeamQuerySet:
        return self.filter(group__user=user)


class Team(models.Model):
    """A business team that owns agents and workflows.

    Membership is the membership of the team's own auth group, so a grant to a team is an
    ordinary guardian group grant and every member holds it.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("admin:governance_team_change", args=[self.pk])

    @property
    def members(self):
        return self.group.user_set.all()


class LedgerHead(models.Model):
    """The head of a chain: its last `seq` and `hash`.

    Appending updates this row first, so the row lock serialises appenders for the rest of
    their transaction: exactly one writer extends the chain at a time, and a rolled-back
    transaction rolls the head back with its record, leaving no gap. Verification never trusts
    this row; it recomputes the chain from the records.
    """

    chain = models.CharField(max_length=32, primary_key=True)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.chain} at {self.seq}"


class DecisionRecord(models.Model):
    """One immutable entry of the decision log (DESIGN.md, The decision ledger).

    `canonical` holds the RFC 8785 bytes exactly as hashed: every other column is a copy of a
    value inside it, kept for filtering and indexes. No foreign keys: ids and name snapshots,
    so nothing deleted elsewhere can cascade into the log. The database refuses UPDATE,
    DELETE and TRUNCATE on this table (migration 0004).
    """

    seq = models.BigIntegerField(primary_key=True)
    recorded_at = models.DateTimeField(db_index=True)
    event = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_name = models.CharField(max_length=200, blank=True)
    team_id = models.CharField(max_length=64, blank=True)
    team_name = models.CharField(max_length=200, blank=True)
    workflow_id = models.CharField(max_length=64, blank=True)
    workflow_name = models.CharField(max_length=200, blank=True)
    agent_id = models.CharField(max_length=64, blank=True)
    agent_name = models.CharField(max_length=200, blank=True)
    run_id = models.CharField(max_length=64, blank=True)
    decision = models.CharField(max_length=200, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    subject_id = models.CharField(max_length=200, blank=True)
    canonical = models.TextField()
    prev_hash = models.CharField(max_length=64)
    # Not unique-indexed: a hash is only ever checked by recomputing the chain, and a btree over
    # random digests cost every append a random page (bench/ledger.py).
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            # Keyset pages: newest first, filtered by the usual columns.
            models.Index(fields=["event", "-seq"], name="ledger_event_seq"),
            models.Index(fields=["team_id", "-seq"], name="ledger_team_seq"),
            models.Index(fields=["workflow_id", "-seq"], name="ledger_workflow_seq"),
            models.Index(fields=["agent_id", "-seq"], name="ledger_agent_seq"),
            models.Index(fields=["run_id", "-seq"], name="ledger_run_seq"),
            models.Index(fields=["actor_id", "-seq"], name="ledger_actor_seq"),
            models.Index(fields=["decision", "-seq"], name="ledger_decision_seq"),
            # Only records with a personal part: erasure looks them up; the rest skip the index.
            models.Index(
                fields=["subject_id"], name="ledger_subject", condition=~models.Q(subject_id="")
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event}"

    def get_absolute_url(self) -> str:
        return reverse("decision-detail", args=[self.seq])


class SubjectKey(models.Model):
    """The key that encrypts one data subject's personal parts, outside the ledger table.

    Erasure destroys the key (right to erasure): the ciphertext stays in the chain and keeps
    verifying, but nobody can read it any more.
    """

    subject_id = models.CharField(max_length=200, unique=True)
    wrapped_key = models.BinaryField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    erased_by = models.CharField(max_length=200, blank=True)
    erasure_reason = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.subject_id

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class Checkpoint(models.Model):
    """An Ed25519 signature over the chain head at `seq`."""

    seq = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    reason = models.CharField(max_length=32)
    payload = models.TextField()  # the canonical JSON that was signed
    signature = models.CharField(max_length=128)  # hex
    key_id = models.CharField(max_length=64)  # SHA-256 of the raw public key, hex

    class Meta:
        ordering = ["-seq", "-signed_at"]

    def __str__(self) -> str:
        return f"checkpoint at #{self.seq}"


class ExportJob(models.Model):
    """A large export of the decision log, made by a Celery task under VAR_DIR/exports/.

    Small exports stream straight to the browser and need no row; this one exists so the page
    can show progress, the file's digest, a download link, or why it failed. The export itself
    is recorded in the ledger (`export.made`); this row is only bookkeeping.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"  # done, its file removed after the retention period

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"
        BUNDLE = "bundle", "Evidence bundle (zip)"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_jobs"
    )
    format = models.CharField(max_length=16, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True)  # DecisionFilter.as_dict()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    file_path = models.CharField(max_length=500, blank=True)
    file_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    record_seq = models.BigIntegerField(null=True, blank=True)  # its `export.made` record
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="exportjob_owner_created")]

    def __str__(self) -> str:
        return f"{self.get_format_display()} export #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("decision-export-job", args=[self.pk])

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED, self.Status.EXPIRED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.progress_total:
            return 0
        return min(99, int(100 * self.progress_done / self.progress_total))


class AuthorizationFailure(models.Model):
    """Requests refused for lack of permission, counted per person, object and action.

    A 404 that hides an existing object, or a refused action, increments the row; the access
    review shows the repeated ones (someone probing, or someone missing a grant)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="+"
    )
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    action = models.CharField(max_length=32)
    last_path = models.CharField(max_length=500)
    count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "object_type", "object_id", "action"], name="authz_failure_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} refused {self.action} on {self.object_type} {self.object_id}"
