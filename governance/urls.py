"""Governance pages: the decision log and its exports (mounted at / by console.urls)."""

from governance.export_urls import urlpatterns as export_urlpatterns
from governance.log_urls import urlpatterns as log_urlpatterns

urlpatterns = [*log_urlpatterns, *export_urlpatterns]
