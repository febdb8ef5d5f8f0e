"""The home page: one panel per role the user holds, each with its own empty state."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Count

from agents.run_queries import escalation_summary, operations_summary
from console import heartbeat
from console.definitions_summary import builder_summary, review_queue
from console.health import check_broker, check_database
from governance.log_views import log_summary
from governance.models import Team
from governance.roles import ROLE_NAMES, Role, roles_of


@dataclass
class Panel:
    role: Role
    title: str
    template: str
    context: dict = field(default_factory=dict)

    @property
    def dom_id(self) -> str:
        return "panel-" + self.role.name.lower()


def panels_for(user) -> list[Panel]:
    roles = roles_of(user)
    builders = {
        Role.BUILDER: _builder_panel,
        Role.APPROVER: _approver_panel,
        Role.OPERATOR: _operator_panel,
        Role.COMPLIANCE: _compliance_panel,
        Role.ADMIN: _admin_panel,
    }
    return [build(user) for role, build in builders.items() if role in roles]


def _builder_panel(user) -> Panel:
    return Panel(
        Role.BUILDER,
        "Builder workspace",
        "console/panels/builder.html",
        {"teams": list(Team.objects.of_user(user)), **builder_summary(user)},
    )


def _approver_panel(user) -> Panel:
    return Panel(
        Role.APPROVER,
        "Review queue",
        "console/panels/approver.html",
        {**escalation_summary(user), "reviews": review_queue(user)},
    )


def _operator_panel(user) -> Panel:
    beat = heartbeat.latest_heartbeat()
    return Panel(
        Role.OPERATOR,
        "Operations",
        "console/panels/operator.html",
        {
            "heartbeat": beat,
            "heartbeat_stale": heartbeat.is_stale(beat),
            **operations_summary(user),
        },
    )


def _compliance_panel(user) -> Panel:
    return Panel(Role.COMPLIANCE, "Compliance", "console/panels/compliance.html", log_summary(user))


def _admin_panel(user) -> Panel:
    user_model = get_user_model()
    beat = heartbeat.latest_heartbeat()
    teams = Team.objects.annotate(member_count=Count("group__user")).order_by("name")
    role_counts = dict(
        user_model.objects.filter(groups__name__in=ROLE_NAMES)
        .values_list("groups__name")
        .annotate(n=Count("id"))
    )
    return Panel(
        Role.ADMIN,
        "Administration",
        "console/panels/admin.html",
        {
            "user_count": user_model.objects.filter(is_active=True).count(),
            "teams": teams,
            "roles": [(role.value, role_counts.get(role.value, 0)) for role in Role],
            "checks": {"Database": check_database(), "Broker": check_broker()},
            "heartbeat": beat,
            "heartbeat_stale": heartbeat.is_stale(beat),
        },
    )
