"""URLs of the decision log browser."""

from django.urls import path

from governance import log_views

urlpatterns = [
    path("decisions/", log_views.decision_list, name="decision-list"),
    path("decisions/<int:seq>/", log_views.decision_detail, name="decision-detail"),
]
