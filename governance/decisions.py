"""One path to decision records: who may see which, and the filters every view and export uses.

Compliance officers and admins see the whole log. Everyone else sees the records of their
teams and the records of their own actions (object grants refine this in issue 5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from django import forms
from django.db.models import Q, QuerySet

from governance.models import DecisionRecord, Team
from governance.roles import Role, has_role


def visible_decisions(user) -> QuerySet[DecisionRecord]:
    records = DecisionRecord.objects.all()
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return records.none()
    if has_role(user, Role.COMPLIANCE, Role.ADMIN):
        return records
    team_ids = [str(pk) for pk in Team.objects.of_user(user).values_list("pk", flat=True)]
    return records.filter(Q(team_id__in=team_ids) | Q(actor_type="person", actor_id=str(user.pk)))


def may_see_everything(user) -> bool:
    return has_role(user, Role.COMPLIANCE, Role.ADMIN)


@dataclass(frozen=True)
class DecisionFilter:
    since: datetime | None = None
    until: datetime | None = None
    event: str = ""
    team: str = ""
    workflow: str = ""
    agent: str = ""
    run: str = ""
    actor: str = ""
    decision: str = ""
    confidence_min: float | None = None
    confidence_max: float | None = None

    def apply(self, records: QuerySet[DecisionRecord]) -> QuerySet[DecisionRecord]:
        if self.since:
            records = records.filter(recorded_at__gte=self.since)
        if self.until:
            records = records.filter(recorded_at__lt=self.until)
        exact = {
            "event": self.event,
            "team_id": self.team,
            "workflow_id": self.workflow,
            "agent_id": self.agent,
            "run_id": self.run,
            "decision": self.decision,
        }
        records = records.filter(**{column: value for column, value in exact.items() if value})
        if self.actor:
            records = records.filter(Q(actor_id=self.actor) | Q(actor_name=self.actor))
        if self.confidence_min is not None:
            records = records.filter(confidence__gte=self.confidence_min)
        if self.confidence_max is not None:
            records = records.filter(confidence__lte=self.confidence_max)
        return records

    def as_dict(self) -> dict:
        """JSON-ready, only the filters that are set (for export manifests and ledger bodies)."""
        result = {}
        for key, value in asdict(self).items():
            if value in (None, ""):
                continue
            result[key] = value.isoformat() if isinstance(value, datetime) else value
        return result

    @property
    def is_empty(self) -> bool:
        return not self.as_dict()


class DecisionFilterForm(forms.Form):
    since = forms.DateTimeField(
        required=False, label="From", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    until = forms.DateTimeField(
        required=False, label="Until", widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    event = forms.CharField(required=False, max_length=64)
    team = forms.CharField(required=False, max_length=64, label="Team id")
    workflow = forms.CharField(required=False, max_length=64, label="Workflow id")
    agent = forms.CharField(required=False, max_length=64, label="Agent id")
    run = forms.CharField(required=False, max_length=64, label="Run id")
    actor = forms.CharField(required=False, max_length=200, help_text="Id or username")
    decision = forms.CharField(required=False, max_length=200)
    confidence_min = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Confidence from"
    )
    confidence_max = forms.FloatField(
        required=False, min_value=0, max_value=1, label="Confidence to"
    )

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "must be later than From")
        low, high = data.get("confidence_min"), data.get("confidence_max")
        if low is not None and high is not None and low > high:
            self.add_error("confidence_max", "must not be lower than Confidence from")
        return data

    def to_filter(self) -> DecisionFilter:
        """The validated filter; call after is_valid()."""
        data = {key: value for key, value in self.cleaned_data.items()}
        for key in ("event", "team", "workflow", "agent", "run", "actor", "decision"):
            data[key] = (data.get(key) or "").strip()
        return DecisionFilter(**data)
