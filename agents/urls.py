"""Pages of connections, agents (and workflows): mounted at / by console.urls.

A plain list: each part appends its own paths."""

from django.urls import path

from agents.views import agents, connections, tryit, workflows

urlpatterns = [
    path("connections/", connections.connection_list, name="connection-list"),
    path("connections/new/", connections.connection_create, name="connection-create"),
    path("connections/<int:pk>/", connections.connection_detail, name="connection-detail"),
    path("connections/<int:pk>/edit/", connections.connection_edit, name="connection-edit"),
    path("connections/<int:pk>/test/", connections.connection_test, name="connection-test"),
    path("agents/", agents.agent_list, name="agent-list"),
    path("agents/new/", agents.agent_create, name="agent-create"),
    path("agents/<int:pk>/", agents.agent_detail, name="agent-detail"),
    path("agents/<int:pk>/edit/", agents.agent_edit, name="agent-edit"),
    path("agents/<int:pk>/try/", tryit.agent_try, name="agent-try"),
    path("agents/<int:pk>/submit/", agents.agent_submit, name="agent-submit"),
    path("agents/<int:pk>/withdraw/", agents.agent_withdraw, name="agent-withdraw"),
    path("agents/<int:pk>/review/", agents.agent_review, name="agent-review"),
    path("agents/<int:pk>/history/", agents.agent_history, name="agent-history"),
    path("agents/<int:pk>/versions/<int:number>/", agents.agent_version, name="agent-version"),
    path(
        "agents/<int:pk>/versions/<int:number>/rollback/",
        agents.agent_rollback,
        name="agent-rollback",
    ),
    path("workflows/", workflows.workflow_list, name="workflow-list"),
    path("workflows/new/", workflows.workflow_create, name="workflow-create"),
    path("workflows/<int:pk>/", workflows.workflow_detail, name="workflow-detail"),
    path("workflows/<int:pk>/edit/", workflows.workflow_edit, name="workflow-edit"),
    path("workflows/<int:pk>/submit/", workflows.workflow_submit, name="workflow-submit"),
    path("workflows/<int:pk>/withdraw/", workflows.workflow_withdraw, name="workflow-withdraw"),
    path("workflows/<int:pk>/review/", workflows.workflow_review, name="workflow-review"),
    path("workflows/<int:pk>/history/", workflows.workflow_history, name="workflow-history"),
    path(
        "workflows/<int:pk>/versions/<int:number>/",
        workflows.workflow_version,
        name="workflow-version",
    ),
    path(
        "workflows/<int:pk>/versions/<int:number>/rollback/",
        workflows.workflow_rollback,
        name="workflow-rollback",
    ),
]

# Runs, the escalation inbox and webhooks (agents/run_urls.py).
from agents.run_urls import urlpatterns as run_urlpatterns  # noqa: E402

urlpatterns += run_urlpatterns
