from django.urls import path

from governance import access_views

urlpatterns = [
    path("access/<str:label>/<int:pk>/", access_views.object_access, name="object-access"),
    path("access/<str:label>/<int:pk>/revoke/", access_views.revoke_access, name="object-revoke"),
    path("access-review/", access_views.review, name="access-review"),
    path("access-review/export.csv", access_views.review_csv, name="access-review-csv"),
    path("access-review/sign-off/", access_views.review_signoff, name="access-review-signoff"),
]
