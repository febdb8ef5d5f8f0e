"""The sidebar: what each role can use. Items appear only for roles that may use the page;
the pages themselves enforce access on their own (hiding a link protects nothing)."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from governance.roles import Role, roles_of

EVERYONE: frozenset[Role] = frozenset(Role)
BUILD_ROLES = frozenset({Role.BUILDER, Role.ADMIN, Role.COMPLIANCE})
OPERATE_ROLES = frozenset({Role.OPERATOR, Role.APPROVER, Role.ADMIN})
# Builders answer their teams' human tasks in the inbox too.
INBOX_ROLES = OPERATE_ROLES | {Role.BUILDER}
REVIEW_ROLES = frozenset({Role.COMPLIANCE, Role.ADMIN})


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[Role] = EVERYONE
    section: str = "Overview"
    # A number shown beside the label: the URL name of the badge htmx loads after the page (so
    # no page waits for the count's query), and the id that htmx swaps it by.
    count_url: str = ""
    count_id: str = ""


NAV_ITEMS: tuple[NavItem, ...] = (
    NavItem("Home", "home"),
    NavItem("Runs", "run-list", OPERATE_ROLES, "Operate"),
    NavItem(
        "Inbox", "escalation-list", INBOX_ROLES, "Operate", "escalation-count", "nav-inbox-count"
    ),
    NavItem("Agents", "agent-list", section="Build"),
    NavItem("Workflows", "workflow-list", section="Build"),
    NavItem("Connections", "connection-list", BUILD_ROLES, "Build"),
    NavItem("Decision log", "decision-list", section="Governance"),
    NavItem("Exports", "decision-export", frozenset({Role.COMPLIANCE, Role.ADMIN}), "Governance"),
    NavItem("Access review", "access-review", REVIEW_ROLES, "Governance"),
    NavItem("API documentation", "api-docs", frozenset({Role.BUILDER, Role.ADMIN}), "Developers"),
    NavItem("Users, teams and roles", "admin:index", frozenset({Role.ADMIN}), "Administration"),
)


def navigation_for(user, current_path: str = "") -> list[dict]:
    """Sections with their items, for the roles `user` holds."""
    roles = roles_of(user)
    sections: dict[str, list[dict]] = {}
    for item in NAV_ITEMS:
        if not roles & item.roles:
            continue
        url = reverse(item.url_name)
        active = current_path == url if url == "/" else current_path.startswith(url)
        entry = {"label": item.label, "url": url, "active": active}
        if item.count_url:
            entry["count_url"] = reverse(item.count_url)
            entry["count_id"] = item.count_id
        sections.setdefault(item.section, []).append(entry)
    return [{"title": title, "items": items} for title, items in sections.items()]
