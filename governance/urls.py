"""Governance pages: the decision log, its exports, and access (mounted at / by console.urls)."""

from governance.access_urls import urlpatterns as access_urlpatterns
from governance.export_urls import urlpatterns as export_urlpatterns
from governance.log_urls import urlpatterns as log_urlpatterns

urlpatterns = [*log_urlpatterns, *export_urlpatterns, *access_urlpatterns]
