"""Operator pages (runs, the escalation inbox, webhook set-up) and the webhook endpoint.

Appended to agents.urls, so mounted at / by console.urls."""

from django.urls import path

from agents.views import inbox, runs, webhooks

urlpatterns = [
    path("runs/", runs.run_list, name="run-list"),
    path("runs/new/", runs.run_new, name="run-new"),
    path("runs/<uuid:pk>/", runs.run_detail, name="run-detail"),
    path("runs/<uuid:pk>/cancel/", runs.run_cancel, name="run-cancel"),
    path("workflows/<int:pk>/run/", runs.run_start, name="workflow-run"),
    path("workflows/<int:pk>/webhook/", webhooks.webhook_settings, name="workflow-webhook"),
    path("escalations/", inbox.inbox, name="escalation-list"),
    path("escalations/count/", inbox.inbox_badge, name="escalation-count"),
    path("escalations/<int:pk>/", inbox.escalation_detail, name="escalation-detail"),
    path("escalations/<int:pk>/resolve/", inbox.escalation_resolve, name="escalation-resolve"),
    path("hooks/<slug:slug>/", webhooks.receive, name="webhook-receive"),
]
