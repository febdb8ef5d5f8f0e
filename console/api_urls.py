"""The REST API at /api/v1/: one router, every app's viewsets registered on it.

Register new viewsets here (`router.register(...)`). Each view on this router is exempt from
LoginRequiredMiddleware, which would answer an API client with a redirect to the sign-in page:
DRF authenticates instead (session or token) and answers 401/403 JSON, and every viewset keeps
the default `IsAuthenticated` permission.
"""

from django.contrib.auth.decorators import login_not_required
from rest_framework.routers import DefaultRouter

from agents.api.agents import AgentViewSet
from agents.api.connections import ConnectionViewSet
from governance.api import DecisionViewSet


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

urlpatterns = router.urls
