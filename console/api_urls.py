"""The REST API at /api/v1/: one router, every app's viewsets registered on it.

Register new viewsets here (`router.register(...)`). Each view on this router is exempt from
LoginRequiredMiddleware, which would answer an API client with a redirect to the sign-in page:
DRF authenticates instead (session or token) and answers 401/403 JSON, and every viewset keeps
the default `IsAuthenticated` permission.
"""

from django.contrib.auth.decorators import login_not_required
from django.urls import path
from rest_framework.routers import DefaultRouter

from agents.api.agents import AgentViewSet
from agents.api.connections import ConnectionViewSet
from agents.api.escalations import EscalationViewSet
from agents.api.runs import RunViewSet, WorkflowRunsView
from agents.api.workflows import WorkflowViewSet
from governance.api import DecisionViewSet
from governance.api_grants import GrantsView


class ApiRouter(DefaultRouter):
    def get_urls(self):
        urls = super().get_urls()
        for pattern in urls:
            login_not_required(pattern.callback)
        return urls


router = ApiRouter()
router.register("decisions", DecisionViewSet, basename="api-decision")
router.register("agents", AgentViewSet, basename="api-agent")
router.register("connections", ConnectionViewSet, basename="api-connection")
router.register("workflows", WorkflowViewSet, basename="api-workflow")
router.register("runs", RunViewSet, basename="api-run")
router.register("escalations", EscalationViewSet, basename="api-escalation")

urlpatterns = [
    # Starting a run is the engine's, beside the workflow viewset (not one of its actions).
    path(
        "workflows/<int:pk>/runs/",
        login_not_required(WorkflowRunsView.as_view()),
        name="api-workflow-runs",
    ),
    # Object grants (the Access tab's API), one per kind of object with grants.
    *(
        path(
            f"{prefix}/<int:pk>/grants/",
            login_not_required(GrantsView.as_view(label=label)),
            name=f"api-{prefix}-grants",
        )
        for prefix, label in (
            ("agents", "agents.agent"),
            ("workflows", "agents.workflow"),
            ("connections", "agents.connection"),
        )
    ),
    *router.urls,
]
