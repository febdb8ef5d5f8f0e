"""URLs of decision-log exports."""

from django.urls import path

from governance import export_views

urlpatterns = [
    path("decisions/export/", export_views.export_decisions, name="decision-export"),
    path("decisions/exports/<int:job_id>/", export_views.export_job, name="decision-export-job"),
    path(
        "decisions/exports/<int:job_id>/download/",
        export_views.download_export,
        name="decision-export-download",
    ),
]
